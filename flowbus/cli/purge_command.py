"""``flowbus purge``: remove, or count, what is past its retention now."""

from __future__ import annotations

import datetime as dt

import click

from flowbus import jsonio
from flowbus.cli.options import closing, db_options, json_option, open_project, run_async
from flowbus.retention import KINDS, parse_before, parse_kinds, purge_due, utc_now


@click.command()
@click.option("--dry-run", is_flag=True, help="Count what would be removed; remove nothing.")
@click.option(
    "--before", "before_text", metavar="TIME",
    help="Remove what was made before TIME (2026-11-01T00:00:00Z) or older than an age (30d), "
    "instead of what is past the ages of the config's retention.",
)  # fmt: skip
@click.option("--what", "what_text", default=",".join(KINDS), show_default=True, metavar="KINDS",
              help="Which kinds, comma-separated.")  # fmt: skip
@json_option
@db_options
def purge(dry_run: bool, before_text: str | None, what_text: str, as_json: bool, db: str, project: str) -> None:
    """Remove what the project keeps past its retention, and print how many of each kind went.

    Without --before, each kind goes at the age the active config's `retention` gives it. Open
    messages (ready or leased) and dead letters that block their group are never removed; event
    instances and runs go whole; steps: a run keeps its record and loses its step runs.
    Workers do the same on their own, a little at a time; this does all of it now.

    \b
    Examples:
      flowbus purge --dry-run
      flowbus purge --what runs,steps --before 14d
      flowbus purge --what messages --before 2026-11-01T00:00:00Z --json
    """
    try:
        kinds = parse_kinds(what_text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--what") from None
    now = utc_now()
    before: dt.datetime | None = None
    if before_text is not None:
        try:
            before = parse_before(before_text, now)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--before") from None
    backend = open_project(db, project)
    counts = run_async(closing(backend, purge_due(backend, kinds=kinds, before=before, dry_run=dry_run, now=now)))
    if as_json:
        click.echo(jsonio.dumps({"dry_run": dry_run, "removed": {kind.value: n for kind, n in counts.items()}}))
        return
    verb = "would remove" if dry_run else "removed"
    for kind, count in counts.items():
        click.echo(f"{kind.value:<13} {verb} {count:,}")
