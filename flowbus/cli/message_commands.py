"""``flowbus send``, ``trace`` and ``dlq``: put work in, follow it, recover what failed."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from flowbus import jsonio
from flowbus.cli.options import closing, db_options, open_project, run_async
from flowbus.cli.try_command import read_data
from flowbus.publishing import active_config, active_number, no_config
from flowbus.queue import QueuedMessage, QueueName
from flowbus.runtime.engine import Engine
from flowbus.runtime.trace import TraceNode, render, to_data, trace_chain, trace_message, trace_run
from flowbus.stores.protocols import Backend, DeadLetterFilter


async def active_engine(backend: Backend) -> Engine:
    found = await active_config(backend)
    if found is None:
        raise click.UsageError(no_config(backend.project))
    number, loaded = found
    return Engine(loaded, backend=backend, config_version=number)


@click.command()
@click.option("--source", help="Send a raw message from this source (queued for workers).")
@click.option("--type", "event_type", help="Its event type (default: from the source's event_type_from).")
@click.option("--event", help="Publish an event: sync handlers run now, async ones are queued.")
@click.option("--data", "data_arg", required=True, help="JSON text, or @path to a JSON or YAML file.")
@click.option("--group", help="FIFO group key: messages of one group are processed in order.")
@click.option("--dedup-id", help="A message with the same id within the de-duplication window is dropped.")
@db_options
def send(
    source: str | None, event_type: str | None, event: str | None, data_arg: str,
    group: str | None, dedup_id: str | None, db: str, project: str,
) -> None:  # fmt: skip
    """Send a message to the project's inbound queue, or publish an event; prints its id.

    \b
    Examples:
      flowbus send --source compass_inbound --data @examples/compass/upsert_company.json
      flowbus send --event OrderPlaced --data @order-placed.json
    """
    if (source is None) == (event is None):
        raise click.UsageError("give exactly one of --source or --event")
    if event is not None and (group or dedup_id or event_type):
        raise click.UsageError("--type, --group and --dedup-id go with --source")
    data = read_data(data_arg)
    backend = open_project(db, project)

    async def work() -> str:
        engine = await active_engine(backend)
        if event is not None:
            if not isinstance(data, dict):
                raise click.BadParameter("event properties must be a JSON object", param_hint="--data")
            instance = await engine.publish(event, data, source="cli")
            return f"event {instance.id}"
        resolved = event_type or engine.event_type_of(source or "", data)
        if resolved is None:
            raise click.UsageError(f"no --type given, and source {source!r} has no event_type_from that finds one")
        message_id = await engine.send(source or "", resolved, data, group_key=group, dedup_id=dedup_id)
        return f"message {message_id}"

    click.echo(run_async(closing(backend, work())))


@click.command()
@click.argument("identifier")
@click.option("--json", "as_json", is_flag=True, help="Print the trace as JSON.")
@db_options
def trace(identifier: str, as_json: bool, db: str, project: str) -> None:
    """Show the trace of an event, a message or a run: runs, their steps, and what they caused.

    For an event, the whole chain it belongs to (by correlation id) is shown.
    """
    backend = open_project(db, project)

    async def work() -> list[TraceNode]:
        return await _trace(backend, identifier)

    trees = run_async(closing(backend, work()))
    if not trees:
        raise click.UsageError(f"no event, message or run {identifier!r} in project {backend.project}")
    if as_json:
        click.echo(jsonio.dumps([to_data(tree) for tree in trees], indent=2))
    else:
        click.echo("\n".join(render(tree) for tree in trees))


async def _trace(backend: Backend, identifier: str) -> list[TraceNode]:
    instance = await backend.get_event(identifier)
    if instance is not None:
        return [await trace_chain(backend, instance)]
    run = await backend.get_run(identifier)
    if run is not None:
        return [await trace_run(backend, run)]
    return await trace_message(backend, identifier)


@click.group()
def dlq() -> None:
    """The dead-letter queue: messages whose attempts are used up."""


def dead_letter_filter(fn: Callable[..., None]) -> Callable[..., None]:
    """``--queue``, ``--name`` and ``--group``, given to the command as one ``where`` filter."""

    @functools.wraps(fn)
    def command(*args: Any, queue: str | None, name: str | None, group: str | None, **kwargs: Any) -> None:
        where = DeadLetterFilter(queue=QueueName(queue) if queue else None, name=name, group_key=group)
        fn(*args, where=where, **kwargs)

    for option in reversed((
        click.option("--queue", type=click.Choice([q.value for q in QueueName]), help="Only this queue."),
        click.option("--name", help="Only messages of this handler (outbound) or source (inbound)."),
        click.option("--group", help="Only this FIFO group."),
    )):  # fmt: skip
        command = option(command)
    return command


@dlq.command("list")
@dead_letter_filter
@click.option("--json", "as_json", is_flag=True)
@db_options
def dlq_list(where: DeadLetterFilter, as_json: bool, db: str, project: str) -> None:
    """List dead letters, oldest first."""
    backend = open_project(db, project)
    dead = run_async(closing(backend, backend.dead_letters(where, limit=1000)))
    if as_json:
        click.echo(jsonio.dumps([m.to_dict() for m in dead], indent=2))
        return
    if not dead:
        click.echo("no dead letters")
    for message in dead:
        last = message.errors[-1].error if message.errors else ""
        hold = " [holds its group]" if message.blocking else ""
        click.echo(f"{message.id}  {message.queue}  {_what(message)}  attempts={message.attempts}{hold}  {last}")


@dlq.command("show")
@click.argument("message_id")
@db_options
def dlq_show(message_id: str, db: str, project: str) -> None:
    """Show one dead letter: its body, config version and every attempt's error."""
    backend = open_project(db, project)

    message = run_async(closing(backend, backend.get_message(message_id)))
    if message is None:
        raise click.UsageError(f"no message {message_id!r} in project {backend.project}")
    click.echo(jsonio.dumps(message.to_dict(), indent=2))


@dlq.command("redrive")
@click.argument("message_ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Every dead letter matching the filters.")
@dead_letter_filter
@click.option("--current-version", is_flag=True, help="Run them on the active config version.")
@db_options
def dlq_redrive(
    message_ids: tuple[str, ...], everything: bool, where: DeadLetterFilter, current_version: bool, db: str,
    project: str,
) -> None:  # fmt: skip
    """Put dead letters back on their queue with fresh attempts (after fixing the cause).

    \b
    Examples:
      flowbus dlq redrive 01938f...            # one message
      flowbus dlq redrive --all --name NotifyWarehouse --current-version
    """
    if bool(message_ids) == everything:
        raise click.UsageError("give message ids, or --all (with optional filters)")
    backend = open_project(db, project)

    async def work() -> int:
        ids = list(message_ids)
        if everything:
            ids = [m.id for m in await backend.dead_letters(where, limit=1_000_000)]
        version = await active_number(backend) if current_version else None
        return await backend.redrive(ids, config_version=version)

    count = run_async(closing(backend, work()))
    click.echo(f"redrove {count} message{'s' if count != 1 else ''}")
    if count == 0 and message_ids:
        raise click.exceptions.Exit(1)


def _what(message: QueuedMessage) -> str:
    body: Any = message.body
    if "handler" in body:
        return f"handler {body['handler']} event {body['event_id']}"
    return f"source {body.get('source')} type {body.get('type')}"
