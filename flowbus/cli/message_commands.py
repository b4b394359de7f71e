"""``flowbus send``, ``trace`` and ``dlq``: put work in, follow it, recover what failed."""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import click

from flowbus import jsonio
from flowbus.active_version import catch_up, no_config
from flowbus.cli.exit_codes import ExitCode
from flowbus.cli.options import closing, db_options, json_option, open_project, print_created, read_data, run_async
from flowbus.delays import DelayError
from flowbus.delays import not_before as visible_at
from flowbus.queue import MessageState, QueuedMessage, QueueName, source_message
from flowbus.stores.protocols import Backend, DeadLetterFilter, Manifest
from flowbus.trace import TraceNode, render, to_data, trace_chain, trace_message, trace_run

if TYPE_CHECKING:
    from flowbus.engine import Engine


async def active_engine(backend: Backend) -> Engine:
    """An engine on the project's active config version (compiles it: import and compile take a second)."""
    from flowbus.engine import Engine  # noqa: PLC0415
    from flowbus.publishing import active_config  # noqa: PLC0415 - the config models and the engine, on use

    await catch_up(backend)
    found = await active_config(backend)
    if found is None:
        raise click.UsageError(no_config(backend.project))
    number, loaded = found
    return Engine(loaded, backend=backend, config_version=number)


@click.command()
@click.option("--source", help="Send a raw message from this source (queued for workers).")
@click.option("--type", "event_type", help="Its event type (default: from the source's event_type_from).")
@click.option("--event", help="Publish an event: sync handlers run now, async ones are queued.")
@click.option("--data", "data_arg", help="JSON text, or @path to a JSON or YAML file.")
@click.option(
    "--file", "file_arg", metavar="PATH",
    help="JSON Lines (- for stdin): one message's data, or one event's properties, a line; sent in batches.",
)  # fmt: skip
@click.option(
    "--batch-size", type=click.IntRange(1, 10_000), default=500, show_default=True,
    help="With --file: the lines sent in one transaction.",
)  # fmt: skip
@click.option("--group", help="FIFO group key: messages of one group are processed in order.")
@click.option("--dedup-id", help="A message with the same id within the de-duplication window is dropped.")
@click.option("--delay", help="Queue it, invisible to workers for this long: seconds or 90s, 10m, 2h, 7d.")
@click.option("--not-before", help="Queue it, invisible to workers until this ISO 8601 time (with an offset).")
@json_option
@db_options
def send(
    source: str | None, event_type: str | None, event: str | None, data_arg: str | None, file_arg: str | None,
    batch_size: int, group: str | None, dedup_id: str | None, delay: str | None, not_before: str | None,
    as_json: bool, db: str, project: str,
) -> None:  # fmt: skip
    """Send a message to the project's inbound queue, or publish an event; prints its id.

    The id alone goes to stdout, so that commands compose: flowbus trace $(flowbus send ...).
    With --file, every line is sent, a batch of lines in one transaction, and the ids are printed
    as their batches commit; a line that cannot be sent stops the command (exit code 2), naming
    it and how far the file was sent.

    \b
    Examples:
      flowbus send --source compass_inbound --data @examples/compass/upsert_company.json
      flowbus send --source compass_inbound --type upsert_company --data '{"payload": {"domain": "a.example"}}'
      id=$(flowbus send --event NAME --data @properties.json) && flowbus trace "$id"
      flowbus send --event OrderPlaced --file orders.jsonl
      flowbus send --event Reminder --data '{"id": 7}' --delay 1h   # queued, published in an hour
    """
    if (source is None) == (event is None):
        raise click.UsageError("give exactly one of --source or --event")
    if event is not None and (group or dedup_id or event_type):
        raise click.UsageError("--type, --group and --dedup-id go with --source")
    if (data_arg is None) == (file_arg is None):
        raise click.UsageError("give exactly one of --data or --file")
    try:
        when = visible_at(delay, not_before, field="--delay" if delay is not None else "--not-before")
    except DelayError as error:
        raise click.UsageError(str(error)) from None
    delayed = delay is not None or not_before is not None
    if file_arg is not None:
        if dedup_id is not None or delayed:
            raise click.UsageError("--dedup-id, --delay and --not-before go with --data, not with --file")
        _send_file(file_arg, source, event_type, event, group, batch_size, as_json, db, project)
        return
    data = read_data(data_arg or "")
    backend = open_project(db, project)

    async def work() -> dict[str, Any]:
        if event is not None:
            if not isinstance(data, dict):
                raise click.BadParameter("event properties must be a JSON object", param_hint="--data")
            engine = await active_engine(backend)
            if delayed:  # queued for a worker to publish when it is due
                message_id = await engine.send_event(event, data, source="cli", not_before=when)
                return {"kind": "message", "id": message_id, "type": event, "not_before": when}
            instance = await engine.publish(event, data, source="cli")
            return {"kind": "event", **instance.to_dict()}
        manifest = await _manifest_with_sources(backend)
        return await _send_message(backend, manifest, source or "", event_type, data, group, dedup_id, when)

    answer = run_async(closing(backend, work()))
    what = f"{answer['kind']} {answer['id']} ({answer['type']})"
    print_created([answer["id"]], human=[f"sent {what} to project {backend.project}"], answer=answer, as_json=as_json)


def _send_file(
    path: str, source: str | None, event_type: str | None, event: str | None, group: str | None,
    batch_size: int, as_json: bool, db: str, project: str,
) -> None:  # fmt: skip
    from flowbus.cli import send_file  # noqa: PLC0415 - only for --file

    name, stream = send_file.open_lines(path)
    backend = open_project(db, project)
    sent = send_file.Sent(keep_ids=as_json)

    async def work() -> None:
        if event is not None:
            engine = await active_engine(backend)
            await send_file.publish_file(engine, event, name, stream, batch_size=batch_size, sent=sent)
            return
        manifest = await _manifest_with_sources(backend)
        path_of_type = _source_type_path(backend, manifest, source or "")
        message_for = send_file.line_message(
            name, source or "", lambda data: event_type or _event_type_in(path_of_type, data), group,
            manifest.version, sent,
        )  # fmt: skip
        await send_file.send_file(backend, message_for, name, stream, batch_size=batch_size, sent=sent)

    with stream:
        run_async(closing(backend, work()))
    kind = "events" if event is not None else "messages"
    summary = f"sent {sent.count:,} {kind} from {name} to project {backend.project}"
    if as_json:
        answer = {"kind": kind, "count": sent.count, "ids": sent.ids}
        print_created(sent.ids, human=[summary], answer=answer, as_json=True)
    else:
        click.echo(summary, err=True)


async def _manifest_with_sources(backend: Backend) -> Manifest:
    """The active version's manifest: what ``send --source`` needs, without compiling the config."""
    await catch_up(backend)
    manifest = await backend.manifest()
    if manifest is None:
        raise click.UsageError(no_config(backend.project))
    if manifest.sources is None:  # stored before manifests kept their sources: compile it once more
        from flowbus.publishing import active_config, manifest_of  # noqa: PLC0415

        found = await active_config(backend)
        if found is not None:
            manifest = manifest_of(found[1])._replace(version=found[0])
    return manifest


async def _send_message(
    backend: Backend, manifest: Manifest, source: str, event_type: str | None, data: Any,
    group: str | None, dedup_id: str | None, not_before: dt.datetime | None,
) -> dict[str, Any]:  # fmt: skip
    path = _source_type_path(backend, manifest, source)
    resolved = event_type or _event_type_in(path, data)
    if resolved is None:
        looked = f"the source's event_type_from {path} found nothing" if path else "the source has no event_type_from"
        raise click.UsageError(f"no event type for source {source!r}: {looked}; give --type")
    message = source_message(source, resolved, data, group, dedup_id, manifest.version, not_before)
    [message_id] = await backend.send([message])
    return {
        "kind": "message", "id": message_id, "source": source, "type": resolved, "group": group,
        "dedup_id": dedup_id, "config_version": manifest.version, "not_before": not_before,
    }  # fmt: skip


def _source_type_path(backend: Backend, manifest: Manifest, source: str) -> str | None:
    """The source's ``event_type_from`` path (None: it has none); a usage error for an unknown source."""
    sources = manifest.sources or {}
    if source not in sources:
        known = ", ".join(sources) or "none"
        raise click.UsageError(
            f"source {source!r} is not in config version {manifest.version} of project {backend.project}"
            f" (its sources: {known})"
        )
    return sources[source]


def _event_type_in(path: str | None, data: Any) -> str | None:
    """The event type that a source's ``event_type_from`` path finds in a raw message."""
    if path is None:
        return None
    if _MEMBER_PATH.fullmatch(path):  # $.a.b, the usual kind: walked here, the same answer
        found = data
        for name in path.split(".")[1:]:
            if not isinstance(found, Mapping) or name not in found:
                return None
            found = found[name]
    else:  # the JSONPath library takes a tenth of a second to import: only when a path needs it
        from flowbus.expr.paths import compile_path  # noqa: PLC0415

        found = compile_path(path).find_one(data)
    return found if isinstance(found, str) else None


#: a JSONPath of member names only (``$.event``, ``$.meta.type``)
_MEMBER_PATH = re.compile(r"\$(?:\.[A-Za-z_][A-Za-z0-9_]*)+")


@click.command()
@click.argument("identifier")
@click.option("--json", "as_json", is_flag=True, help="Print the trace as JSON.")
@db_options
def trace(identifier: str, as_json: bool, db: str, project: str) -> None:
    """Show the trace of an event, a message or a run: runs, their steps, and what they caused.

    For an event, the whole chain it belongs to (by correlation id) is shown.
    """
    backend = open_project(db, project)

    async def work() -> tuple[list[TraceNode], QueuedMessage | None]:
        trees = await _trace(backend, identifier)
        return trees, None if trees else await backend.get_message(identifier)

    trees, waiting = run_async(closing(backend, work()))
    if waiting is not None:
        _waiting(waiting, as_json)
        return
    if not trees:
        raise click.UsageError(f"no event, message or run {identifier!r} in project {backend.project}")
    if as_json:
        click.echo(jsonio.dumps([to_data(tree) for tree in trees], indent=2))
    else:
        click.echo("\n".join(render(tree) for tree in trees))


def _waiting(message: QueuedMessage, as_json: bool) -> None:
    """A message no worker has run yet (just sent, say): its state, as it has no trace."""
    if as_json:
        click.echo(jsonio.dumps([{"kind": "message", **message.to_dict(), "children": []}], indent=2))
        return
    click.echo(f"message {message.id} {_what(message)} [{message.state}]: no run yet")


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
@json_option
@db_options
def dlq_redrive(
    message_ids: tuple[str, ...], everything: bool, where: DeadLetterFilter, current_version: bool, as_json: bool,
    db: str, project: str,
) -> None:  # fmt: skip
    """Put dead letters back on their queue with fresh attempts (after fixing the cause).

    Prints the ids of the messages put back (on stdout, one a line; the count goes to stderr).

    \b
    Examples:
      flowbus dlq redrive 01938f...            # one message
      flowbus dlq redrive --all --name NotifyWarehouse --current-version
    """
    if bool(message_ids) == everything:
        raise click.UsageError("give message ids, or --all (with optional filters)")
    backend = open_project(db, project)

    async def work() -> tuple[list[str], int, int | None]:
        if everything:
            ids = [m.id for m in await backend.dead_letters(where, limit=1_000_000)]
        else:  # only dead letters are put back: the ids of the others are not printed
            ids = [i for i in dict.fromkeys(message_ids) if await _is_dead(backend, i)]
        await catch_up(backend)
        version = await backend.active_version() if current_version else None
        # fewer than asked only when another process put some back meanwhile: all are back then
        return ids, await backend.redrive(ids, config_version=version), version

    ids, count, version = run_async(closing(backend, work()))
    human = [f"redrove {count} message{'s' if count != 1 else ''}"]
    print_created(ids, human=human, answer={"redriven": ids, "config_version": version}, as_json=as_json)
    skipped = [i for i in dict.fromkeys(message_ids) if i not in ids]
    if skipped:
        click.echo(f"not dead letters: {', '.join(skipped)}", err=True)
        raise click.exceptions.Exit(ExitCode.FAILED)


async def _is_dead(backend: Backend, message_id: str) -> bool:
    message = await backend.get_message(message_id)
    return message is not None and message.state is MessageState.DEAD


def _what(message: QueuedMessage) -> str:
    body: Any = message.body
    if "handler" in body:
        return f"handler {body['handler']} event {body['event_id']}"
    return f"source {body.get('source')} type {body.get('type')}"
