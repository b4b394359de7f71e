"""``flowbus db migrate``: bring a database's schema up to date."""

from __future__ import annotations

import click

from flowbus.cli.options import closing, open_project, run_async, setting_option


@click.group()
def db() -> None:
    """The database flowbus keeps its state in."""


@db.command()
@setting_option("db", "--db")
def migrate(db: str) -> None:
    """Create or upgrade the schema. Every command also does it when it opens the database;
    run it on its own before starting workers of a new release.

    Safe to run from several machines at once: migrations run under a lock, each once.

    \b
    Example:
      flowbus db migrate --db postgresql://flowbus@db.internal/flowbus
    """
    backend = open_project(db, "default")

    async def work() -> list[int]:
        return await backend.migrate()

    run_async(closing(backend, work()))
    click.echo("the schema is up to date")
