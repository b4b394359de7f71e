"""A project's active config version and its manifest, read without compiling any config:
what workers, ``flowbus send`` and ``flowbus dlq`` need (compiling takes most of a second)."""

from __future__ import annotations

from flowbus.stores.protocols import Backend, Manifest


def no_config(project: str) -> str:
    """What to say of a project that has no active version, and what to do about it."""
    return f"project {project!r} has no published config: flowbus publish FILE"


async def active_number(backend: Backend) -> int | None:
    """The active version's number, once the dispatcher has caught up."""
    await backend.project_versions()
    return await backend.active_version()


async def active_manifest(backend: Backend) -> Manifest | None:
    """The active version's manifest, once the dispatcher has caught up."""
    await backend.project_versions()
    return await backend.manifest()
