"""``flowbus schedules``: each schedule of a config, what it does, and when it fires next."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from flowbus import jsonio
from flowbus.active_version import catch_up, no_config
from flowbus.cli.options import closing, db_options, json_option, load_or_exit, open_project, run_async
from flowbus.config.model import Config
from flowbus.config.schedules import Schedule
from flowbus.publishing import config_of
from flowbus.schedules import next_ticks


@click.command()
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--count", default=3, show_default=True, type=click.IntRange(1, 100), help="Fire times per schedule.")
@json_option
@db_options
def schedules(file: str | None, count: int, as_json: bool, db: str, project: str) -> None:
    """List the schedules and their next fire times: of FILE, or of the project's active config.

    Read from the database (no FILE), each schedule also shows the last tick it fired.

    \b
    Examples:
      flowbus schedules flowbus.yaml
      flowbus schedules --db postgresql://flowbus@db/flowbus --count 5 --json
    """
    now = dt.datetime.now(dt.UTC)
    if file is not None:
        listed = listing(load_or_exit(file).config, {}, now, count)
    else:
        backend = open_project(db, project)

        async def work() -> list[dict[str, Any]]:
            await catch_up(backend)
            number = await backend.active_version()
            version = await backend.get_version(number) if number is not None else None
            if version is None:
                raise click.UsageError(no_config(backend.project))
            return listing(config_of(version), await backend.schedule_ticks(), now, count)

        listed = run_async(closing(backend, work()))
    if as_json:
        click.echo(jsonio.dumps(listed, indent=2))
        return
    if not listed:
        click.echo("no schedules")
    for item in listed:
        state = "" if item["enabled"] else "  (disabled)"
        click.echo(
            f"{item['name']}  {item['cron']}  {item['timezone']}  catch_up {item['catch_up']}  {item['does']}{state}"
        )
        if item["last_tick"] is not None:
            click.echo(f"  last  {item['last_tick'].isoformat()}")
        for tick in item["next"]:
            click.echo(f"  next  {tick.isoformat()}")


def listing(config: Config, last: dict[str, dt.datetime], now: dt.datetime, count: int) -> list[dict[str, Any]]:
    """Each schedule of ``config`` as plain data: its next ``count`` fire times after ``now``, in
    its own time zone, and the last tick it fired (from ``last``)."""
    return [
        {
            "name": s.name,
            "cron": s.cron,
            "timezone": s.timezone,
            "catch_up": s.catch_up,
            "enabled": s.enabled,
            "does": _does(s),
            "last_tick": last.get(s.name),
            "next": next_ticks(s, now, count) if s.enabled else [],
        }
        for s in config.schedules
    ]


def _does(schedule: Schedule) -> str:
    return f"publish {schedule.publish.event}" if schedule.publish is not None else f"run {schedule.run}"
