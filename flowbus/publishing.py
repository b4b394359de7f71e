"""The config lifecycle (design §6): publish a config as an immutable version, diff, roll back.

Publishing validates and compiles the config, then stores the numbered version, its manifest
and an outbox record in one transaction; the dispatcher (``Backend.project_versions``, run here
and by every worker) makes it the active version. Workers notice the new active version and
switch without a restart.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flowbus.active_version import no_config
from flowbus.config.diff import ConfigDiff, diff_configs
from flowbus.config.issues import ConfigError, Issue
from flowbus.config.loader import LoadedConfig, load_config_text, parse_config
from flowbus.config.model import Config
from flowbus.config.versions import ConfigVersion, content_hash
from flowbus.errors import FlowbusError
from flowbus.stores.protocols import Backend, Manifest

__all__ = [
    "PublishResult",
    "VersionNotFound",
    "active_config",
    "diff_versions",
    "manifest_of",
    "no_config",
    "publish_config",
    "rollback",
]


class VersionNotFound(FlowbusError):
    """No such config version."""


@dataclass(frozen=True, kw_only=True)
class PublishResult:
    version: ConfigVersion
    #: the difference from the version that was active before (everything added when none was)
    diff: ConfigDiff
    #: True when the config meant the same as the active version: nothing new was stored
    unchanged: bool = False


def manifest_of(loaded: LoadedConfig) -> Manifest:
    """Handlers are listed under their event's name, or ``name vN`` for an event of several versions."""
    plan = loaded.plan
    routes = {key: tuple(flow.name for flow in flows) for key, flows in plan.routes.items()}
    handlers = {
        event.label: tuple((h.name, "sync") for h in subs.sync) + tuple((h.name, "async") for h in subs.async_)
        for event in plan.versions.values()
        if (subs := event.subscribers).sync or subs.async_
    }
    # every source a message may come from: the declared ones, or (with none declared) those
    # the trigger flows name; each with the path that finds a message's event type, if any
    names = [source.name for source in loaded.config.sources] or [f.source for f in loaded.config.flows if f.source]
    sources = {name: path.source if (path := plan.type_paths.get(name)) else None for name in names}
    return Manifest(version=0, routes=routes, handlers=handlers, sources=sources)


def check_project(loaded: LoadedConfig, project: str) -> None:
    """Refuse a config that names another project than the one it is stored under.

    A config without ``project.name`` belongs to whichever project it is published to.
    """
    config = loaded.config
    named = "project" in config.model_fields_set and "name" in config.project.model_fields_set
    if named and config.project.name != project:
        where = loaded.document.location(("project", "name"))
        message = f"the config names project {config.project.name!r}, but it was sent to project {project!r}"
        raise ConfigError([Issue.error(where, message)])


async def publish_config(backend: Backend, text: str, *, file: str, note: str = "") -> PublishResult:
    """Validate, compile and publish ``text``; raises :class:`~flowbus.config.ConfigError` when invalid
    or when it names another project than ``backend``'s."""
    loaded = load_config_text(text, file=file)
    check_project(loaded, backend.project)
    active = await _active(backend)
    digest = content_hash(loaded.config)
    if active is not None and active.content_hash == digest:
        return PublishResult(version=active, diff=ConfigDiff(), unchanged=True)
    previous = config_of(active) if active is not None else None
    diff = diff_configs(previous, loaded.config) if previous is not None else _everything(loaded)
    summary = f"{note}{diff.summary()}" if note else diff.summary()
    draft = ConfigVersion(
        number=0, text=text, file=file, content_hash=digest, created_at=dt.datetime.now(dt.UTC), summary=summary
    )
    stored = await backend.add_version(draft, manifest_of(loaded))
    await backend.project_versions()
    return PublishResult(version=stored, diff=diff)


async def rollback(backend: Backend, number: int) -> PublishResult:
    """Publish version ``number``'s config again, as a new version."""
    old = await backend.get_version(number)
    if old is None:
        raise VersionNotFound(f"there is no config version {number}")
    return await publish_config(backend, old.text, file=old.file, note=f"rollback to v{number}: ")


async def diff_versions(backend: Backend, old: int, new: int) -> ConfigDiff:
    configs = []
    for number in (old, new):
        version = await backend.get_version(number)
        if version is None:
            raise VersionNotFound(f"there is no config version {number}")
        configs.append(config_of(version))
    return diff_configs(configs[0], configs[1])


async def active_config(backend: Backend) -> tuple[int, LoadedConfig] | None:
    """The active version's number and its loaded config (compiled once per process)."""
    version = await _active(backend)
    if version is None:
        return None
    return version.number, load_config_text(version.text, file=version.file)


async def _active(backend: Backend) -> ConfigVersion | None:
    number = await backend.active_version()
    return await backend.get_version(number) if number is not None else None


def config_of(version: ConfigVersion) -> Config:
    """A stored version's structure, for a diff: only parsed, since it passed every check when it
    was published and a diff needs no compiled steps."""
    return parse_config(version.text, file=version.file)


def _everything(loaded: LoadedConfig) -> ConfigDiff:
    return diff_configs(Config(project=loaded.config.project), loaded.config)
