"""``flowbus worker``: run queued work until told to stop."""

from __future__ import annotations

import asyncio
import signal

import click

from flowbus.cli.custom_actions import actions_option, load_actions, register_actions
from flowbus.cli.message_commands import active_engine
from flowbus.cli.options import closing, db_options, open_project, run_async, setting_option, steady_collector
from flowbus.engine import Engine
from flowbus.errors import StoreError
from flowbus.logs import setup_logging
from flowbus.stores.backoff import Backoff
from flowbus.stores.protocols import Backend
from flowbus.worker import Worker, WorkerSettings, logger


@click.command()
@db_options
@setting_option("batch_size")
@setting_option("lease_s")
@setting_option("log_format")
@setting_option("log_level")
@actions_option
def worker(
    db: str,
    project: str,
    batch_size: int,
    lease_s: float,
    log_format: str,
    log_level: str,
    action_specs: tuple[str, ...],
) -> None:
    """Claim and run queued messages of the project, following newly published config versions.

    On SIGTERM or Ctrl-C it stops claiming, finishes the run in hand, gives back the rest of
    its batch, and exits 0. Several workers (processes) may share one database.

    \b
    Example:
      flowbus worker --db sqlite:///shop.db --log-format json
      flowbus worker --log-level warning      # no line per run
      flowbus worker --actions shop_actions:ACTIONS   # the Python steps of the config
    """
    actions = load_actions(action_specs)
    # a stop asked for while starting up is kept, not fatal: the worker then exits at once, cleanly
    stop_asked: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda number, _frame: stop_asked.append(number))
    setup_logging(log_format, log_level)
    backend = open_project(db, project)

    async def work() -> None:
        engine = await engine_when_the_store_answers(backend, stop_asked)
        if engine is None:
            return
        register_actions(engine, actions)
        runner = Worker(engine, WorkerSettings(batch_size=batch_size, lease_s=lease_s), follow_versions=True)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, runner.stop)
        if stop_asked:
            runner.stop()
        await runner.run()

    steady_collector()
    run_async(closing(backend, work()))


async def engine_when_the_store_answers(backend: Backend, stop_asked: list[int]) -> Engine | None:
    """The engine of the active version, once the store answers: a store that is away at start is
    waited out as the worker waits out any outage (None: a stop was asked for meanwhile)."""
    backoff = Backoff()
    while not stop_asked:
        try:
            return await active_engine(backend)
        except StoreError as exc:
            if not backoff.failures:
                logger.error("the store is unavailable; retrying until it answers", extra={"error": exc.message})
            await asyncio.sleep(backoff.failed())
    return None
