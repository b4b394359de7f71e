"""``flowbus events``, ``runs`` and ``entities``: what ran and what it wrote, read from ``--db``
without a server, with the filters and pages of the HTTP API's reads.

Data goes to stdout (a table, or with ``--json`` the API's page: ``{"items", "next_cursor"}``);
the hint to the next page goes to stderr. The store and the shared reads are imported when a
command runs, not when the CLI starts.
"""

from __future__ import annotations

import datetime as dt
import re
import shlex
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from flowbus.cli.options import closing, db_options, open_project, run_async
from flowbus.runtime.records import RunStatus, Trigger

F = TypeVar("F", bound=Callable[..., Any])

#: the largest page, as over HTTP
MAX_LIMIT = 500


def page_options(fn: F) -> F:
    """``--limit``, ``--cursor`` and ``--json`` of every list."""
    for option in reversed((
        click.option(
            "--limit", default=50, show_default=True, type=click.IntRange(1, MAX_LIMIT), help="Items per page."
        ),
        click.option("--cursor", help="Where the page starts: the cursor the previous page printed."),
        click.option("--json", "as_json", is_flag=True, help="Print the page as JSON: items and next_cursor."),
    )):  # fmt: skip
        fn = option(fn)
    return fn


def _time(text: str | None, flag: str) -> dt.datetime | None:
    if text is None:
        return None
    from flowbus.reads import utc_time  # noqa: PLC0415 - imported when the command runs

    try:
        return utc_time(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=flag) from None  # it names the value and the format


def _when(value: Any) -> str:
    return str(value.isoformat(timespec="seconds"))


def _print_table(header: Sequence[str], rows: Sequence[Sequence[str]], nothing: str) -> None:
    """Columns as wide as their widest cell; the last one as it is."""
    if not rows:
        click.echo(nothing)
        return
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header) - 1)]
    for row in (header, *rows):
        click.echo(
            "  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]]).rstrip()
        )


def _show(
    page: dict[str, Any], as_json: bool, header: Sequence[str], row: Callable[[Any], Sequence[str]], nothing: str
) -> None:
    from flowbus import jsonio  # noqa: PLC0415

    if as_json:
        click.echo(jsonio.dumps(page, indent=2))
    else:
        _print_table(header, [row(item) for item in page["items"]], nothing)
    if page["next_cursor"] is not None:
        click.echo(f"more on the next page: add --cursor {shlex.quote(page['next_cursor'])}", err=True)


@click.command()
@click.option("--type", "event_type", help="Only events of this type.")
@click.option("--source", help="Only events from this source (flowbus send --event publishes from cli).")
@click.option("--correlation-id", help="Only the events of one chain.")
@click.option("--since", help="Only events at or after this ISO 8601 time (UTC when it has no offset).")
@click.option("--until", help="Only events before this time.")
@page_options
@db_options
def events(
    event_type: str | None, source: str | None, correlation_id: str | None, since: str | None, until: str | None,
    limit: int, cursor: str | None, as_json: bool, db: str, project: str,
) -> None:  # fmt: skip
    """List event instances, newest first.

    \b
    Examples:
      flowbus events --type OrderPlaced --since 2026-11-22T10:00:00Z
      flowbus events --correlation-id 01938f... --json
    """
    from flowbus.reads import events_page  # noqa: PLC0415
    from flowbus.stores.protocols import EventFilter  # noqa: PLC0415

    where = EventFilter(event_type, source, correlation_id, _time(since, "--since"), _time(until, "--until"))
    backend = open_project(db, project)
    page = run_async(closing(backend, events_page(backend, where, cursor, limit)))
    _show(
        page, as_json, ("ID", "TIME", "TYPE", "SOURCE", "CORRELATION ID"),
        lambda e: (e["id"], _when(e["time"]), e["type"], e["source"], e["correlation_id"]), "no events",
    )  # fmt: skip


@click.command()
@click.option("--flow", help="Only runs of this flow.")
@click.option("--handler", help="Only runs of this handler.")
@click.option("--status", type=click.Choice([s.value for s in RunStatus]), help="Only runs that ended so.")
@click.option("--trigger", type=click.Choice([t.value for t in Trigger]), help="Only runs started so.")
@page_options
@db_options
def runs(
    flow: str | None, handler: str | None, status: str | None, trigger: str | None,
    limit: int, cursor: str | None, as_json: bool, db: str, project: str,
) -> None:  # fmt: skip
    """List runs, newest first, without their steps (flowbus trace RUN_ID shows them).

    \b
    Examples:
      flowbus runs --status failed
      flowbus runs --flow CreateOrder --trigger handler --json
    """
    from flowbus.reads import runs_page  # noqa: PLC0415
    from flowbus.stores.protocols import RunFilter  # noqa: PLC0415

    where = RunFilter(flow, handler, RunStatus(status) if status else None, Trigger(trigger) if trigger else None)
    backend = open_project(db, project)
    page = run_async(closing(backend, runs_page(backend, where, cursor, limit)))
    _show(
        page, as_json, ("ID", "STARTED", "FLOW", "HANDLER", "TRIGGER", "STATUS", "MS", "ERROR"),
        lambda r: (
            r["id"], _when(r["started_at"]), r["flow"], r["handler"] or "-", r["trigger"], r["status"],
            f"{r['duration_ms']:g}", (r["error"] or "").split("\n", 1)[0],
        ),
        "no runs",
    )  # fmt: skip


@click.command()
@click.argument("entity")
@click.argument("key", required=False)
@click.option("--where", "pairs", multiple=True, metavar="FIELD=VALUE", help=(
    "Only records whose top-level FIELD has the text VALUE (a string as it is, an integer in "
    "decimal, true or false, a decimal or time as stored); repeat for more (all must hold)."
))  # fmt: skip
@page_options
@db_options
@click.pass_context
def entities(
    ctx: click.Context, entity: str, key: str | None, pairs: tuple[str, ...], limit: int, cursor: str | None,
    as_json: bool, db: str, project: str,
) -> None:  # fmt: skip
    """List the records of ENTITY in key order, or show the record with KEY.

    \b
    Examples:
      flowbus entities company --where industry=Manufacturing
      flowbus entities company acme.example
    """
    from flowbus import jsonio, reads  # noqa: PLC0415
    from flowbus.config.base import IDENTIFIER_PATTERN  # noqa: PLC0415

    if not re.fullmatch(IDENTIFIER_PATTERN, entity):
        raise click.BadParameter(f"{entity!r} is no entity name: letters, digits and _", param_hint="ENTITY")
    if key is not None:
        listing = [f"--{name}" for name in ("where", "limit", "cursor") if _given(ctx, name)]
        if listing:
            raise click.UsageError(f"KEY shows one record; {', '.join(listing)} lists records: give one or the other")
        _show_record(entity, key, as_json, db, project)
        return
    try:
        where = reads.field_filters(pairs)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--where") from None
    backend = open_project(db, project)
    page = run_async(closing(backend, reads.records_page(backend, entity, where, cursor, limit)))
    _show(
        page, as_json, ("KEY", "VERSION", "DATA"), lambda r: (r["key"], str(r["version"]), jsonio.dumps(r["data"])),
        f"no {entity} records",
    )  # fmt: skip


def _given(ctx: click.Context, name: str) -> bool:
    parameter = "pairs" if name == "where" else name
    return ctx.get_parameter_source(parameter) is not click.core.ParameterSource.DEFAULT


def _show_record(entity: str, key: str, as_json: bool, db: str, project: str) -> None:
    from flowbus import jsonio  # noqa: PLC0415
    from flowbus.reads import record_data  # noqa: PLC0415

    backend = open_project(db, project)
    stored = run_async(closing(backend, backend.read_entity(entity, key)))
    if stored is None:
        raise click.UsageError(f"no {entity} record {key!r} in project {backend.project}")
    data = record_data(key, stored)
    if as_json:
        click.echo(jsonio.dumps(data, indent=2))
    else:
        click.echo(f"{entity} {key} (version {stored.version})")
        click.echo(jsonio.dumps(data["data"], indent=2))
