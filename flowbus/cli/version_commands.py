"""``flowbus publish``, ``versions``, ``diff`` and ``rollback``: the config lifecycle."""

from __future__ import annotations

import click

from flowbus import jsonio
from flowbus.active_version import catch_up
from flowbus.cli.options import (
    closing,
    db_options,
    json_option,
    open_project,
    print_created,
    read_and_load_or_exit,
    run_async,
)
from flowbus.config.diff import ConfigDiff, diff_configs
from flowbus.config.model import Config
from flowbus.publishing import (
    PublishResult,
    VersionNotFound,
    config_of,
    diff_versions,
    no_config,
    publish_config,
    rollback,
)
from flowbus.stores.protocols import Backend


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@json_option
@db_options
def publish(file: str, as_json: bool, db: str, project: str) -> None:
    """Validate FILE and publish it as the project's next config version.

    Prints the version's number (on stdout; what changed goes to stderr).

    Workers switch to it without a restart. Publishing a file that means the same as the
    active version stores nothing. The project is the config's `project.name`.

    \b
    Example:
      flowbus publish examples/shop/flowbus.yaml --db sqlite:///shop.db
    """
    text, loaded = read_and_load_or_exit(file)  # the config names its project, and must be valid
    backend = open_project(db, project or loaded.config.project.name)

    async def work() -> PublishResult:
        return await publish_config(backend, text, file=file)

    result = run_async(closing(backend, work()))
    _report(result, as_json, unchanged=f"version {result.version.number} of {backend.project} is already this config",
            published=f"of {backend.project}")  # fmt: skip


@click.command()
@db_options
def versions(db: str, project: str) -> None:
    """List the project's config versions, newest last; `*` marks the active one."""
    backend = open_project(db, project)

    async def work() -> None:
        active = await backend.active_version()
        listed = await backend.versions()
        if not listed:
            click.echo(f"project {backend.project} has no config version yet: flowbus publish FILE")
        for version in listed:
            mark = "*" if version.number == active else " "
            when = version.created_at.strftime("%Y-%m-%d %H:%M:%S")
            click.echo(f"{mark} v{version.number:<4} {when}  {version.content_hash[:12]}  {version.summary}")

    run_async(closing(backend, work()))


@click.command()
@click.option("--from", "old", type=int, help="Version to diff from (default: the one before --to).")
@click.option("--to", "new", type=int, help="Version to diff to (default: the active version).")
@click.option("--json", "as_json", is_flag=True, help="Print the diff as JSON.")
@db_options
def diff(old: int | None, new: int | None, as_json: bool, db: str, project: str) -> None:
    """Show what changed between two config versions: flows, steps, handlers, events, sources, targets.

    \b
    Examples:
      flowbus diff                  # the active version against the one before it (v1: against nothing)
      flowbus diff --from 2 --to 5
    """
    backend = open_project(db, project)

    async def work() -> None:
        to = new if new is not None else await _active_or_fail(backend)
        start = old if old is not None else to - 1
        # version 1 has none before it: against nothing, everything in it was added
        result = await diff_versions(backend, start, to) if start > 0 or old is not None else await _first(backend, to)
        if as_json:
            click.echo(jsonio.dumps({"from": start or None, "to": to, **result.to_data()}, indent=2))
            return
        click.echo(f"{f'v{start}' if start else 'nothing'} -> v{to}: {result.summary()}")
        for line in result.lines():
            click.echo(f"  {line}")

    run_async(closing(backend, work()))


@click.command("rollback")
@click.argument("number", type=int)
@json_option
@db_options
def rollback_command(number: int, as_json: bool, db: str, project: str) -> None:
    """Publish config version NUMBER again, as a new version (history is never rewritten).

    Prints the new version's number (on stdout; what changed goes to stderr).
    """
    backend = open_project(db, project)

    async def work() -> PublishResult:
        return await rollback(backend, number)

    result = run_async(closing(backend, work()))
    _report(result, as_json,
            unchanged=f"the active version {result.version.number} is already the config of v{number}",
            published=f"(the config of v{number})")  # fmt: skip


def _report(result: PublishResult, as_json: bool, *, unchanged: str, published: str) -> None:
    """The version's number on stdout (the active one when nothing changed), what changed on stderr."""
    version = result.version
    if result.unchanged:
        human = [f"unchanged: {unchanged}"]
    else:
        human = [f"published version {version.number} {published}: {result.diff.summary()}"]
        human += [f"  {line}" for line in result.diff.lines()]
    answer = {
        "version": version.number, "unchanged": result.unchanged, "content_hash": version.content_hash,
        "created_at": version.created_at, **result.diff.to_data(),
    }  # fmt: skip
    print_created([str(version.number)], human=human, answer=answer, as_json=as_json)


async def _first(backend: Backend, number: int) -> ConfigDiff:
    """What version ``number`` holds, against an empty config of its project."""
    version = await backend.get_version(number)
    if version is None:
        raise VersionNotFound(f"there is no config version {number}")
    config = config_of(version)
    return diff_configs(Config(project=config.project), config)


async def _active_or_fail(backend: Backend) -> int:
    await catch_up(backend)
    active = await backend.active_version()
    if active is None:
        raise click.UsageError(no_config(backend.project))
    return active
