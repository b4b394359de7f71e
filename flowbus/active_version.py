"""A project's active config version, and its names.

- ``Backend.active_version()`` is its number: a read, with no side effect;
- ``Backend.manifest()`` is what it dispatches, read without compiling any config (what workers,
  ``flowbus send`` and ``flowbus dlq`` need: compiling takes most of a second);
- :func:`flowbus.publishing.active_config` is its compiled config.

A published version becomes the active one when ``Backend.project_versions()``, the dispatcher of
the config outbox, runs: the publisher runs it after storing the version, every worker at each
version check, and the commands that read the active version from the database where no worker
may run (:func:`catch_up`), so that a version stored by a publisher that died before
dispatching it is not left pending. The API and the dashboard only read.
"""

from __future__ import annotations

from flowbus.stores.protocols import Backend


def no_config(project: str) -> str:
    """What to say of a project that has no active version, and what to do about it."""
    return f"project {project!r} has no published config: flowbus publish FILE"


async def catch_up(backend: Backend) -> None:
    """Make any published version still pending in the config outbox the active one."""
    await backend.project_versions()
