"""``flowbus try``: run a config in memory against one message, event or flow call."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import Any

import click

from flowbus import jsonio
from flowbus.cli.exit_codes import ExitCode
from flowbus.cli.options import load_or_exit, read_data
from flowbus.engine import Engine
from flowbus.errors import EventValidationError, Rejected, RunFailed, UnknownNameError
from flowbus.runtime.inbound import event_type_of
from flowbus.runtime.records import Run, RunStatus
from flowbus.stores.memory import MemoryBackend
from flowbus.testing import seed_entities
from flowbus.trace import TraceNode, render, run_summary, to_data, trace_event, trace_run


@click.command("try")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--source", help="Send the data as a raw message from this source.")
@click.option(
    "--type",
    "event_type",
    help="The message's event type (default: from the source's event_type_from).",
)
@click.option("--event", help="Publish the data as the properties of this event.")
@click.option("--flow", help="Run this logic flow with the data as its inputs.")
@click.option("--data", "data_arg", required=True, help="JSON text, or @path to a JSON or YAML file.")
@click.option("--seed", help="@path or path to a JSON or YAML file of entity records to start from.")
@click.option("--json", "as_json", is_flag=True, help="Print the trace as JSON.")
def try_(
    file: str, source: str | None, event_type: str | None, event: str | None, flow: str | None,
    data_arg: str, seed: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Run FILE in memory: send one message, publish one event or run one flow; drain async work;
    print the trace.

    Exactly one of --source, --event or --flow. Nothing is kept after it exits.

    \b
    Examples:
      flowbus try examples/compass/flowbus.yaml --source compass_inbound \\
          --data @examples/compass/upsert_company.json
      flowbus try examples/shop/flowbus.yaml --flow CreateOrder \\
          --data @examples/shop/order.json --seed examples/shop/seed.yaml
    """
    if sum(x is not None for x in (source, event, flow)) != 1:
        raise click.UsageError("give exactly one of --source, --event or --flow")
    if event_type is not None and source is None:
        raise click.UsageError("--type goes with --source")
    loaded = load_or_exit(file)
    data = read_data(data_arg)
    seed_data = read_data(seed if seed.startswith("@") else "@" + seed, option="--seed") if seed else None
    backend = MemoryBackend(loaded.config.project.name)
    engine = Engine(loaded, backend=backend)

    async def work() -> ExitCode:
        try:
            return await _try(engine, backend, source, event_type, event, flow, data, seed_data, as_json)
        finally:
            await engine.close()  # the connections of its http targets

    sys.exit(asyncio.run(work()))


async def _try(
    engine: Engine, backend: MemoryBackend, source: str | None, event_type: str | None, event: str | None,
    flow: str | None, data: Any, seed: Any, as_json: bool,
) -> ExitCode:  # fmt: skip
    try:
        if seed is not None:
            if not isinstance(seed, dict):
                raise click.BadParameter("seed data must map entity names to lists of records", param_hint="--seed")
            await seed_entities(engine, seed)
        roots, failure = await _start(engine, source, event_type, event, flow, data)
    except (UnknownNameError, EventValidationError) as exc:
        raise click.UsageError(exc.message) from None
    before_store = _store_counts(backend)
    before = {"queued_messages": len(backend.open_messages()), "store": before_store}
    async_runs = await engine.drain()
    # traced after draining, the tree holds the whole chain, async handler runs included, each once
    trees = [await _tree(backend, root) for root in roots]
    after = _store_counts(backend)
    dead = await backend.dead_letters()
    runs = [*(r for r in roots if isinstance(r, Run)), *async_runs]
    code = _exit_code(runs, failure)
    if as_json:
        dead_letters = [{"id": m.id, "body": m.body, "errors": [e.error for e in m.errors]} for m in dead]
        click.echo(jsonio.dumps({
            "status": code.name.lower(), "error": failure, "trace": [to_data(t) for t in trees],
            "before_drain": before, "async_runs": [run_summary(r) for r in async_runs],
            "store": after, "dead_letters": dead_letters,
        }, indent=2))  # fmt: skip
        return code
    for tree in trees:
        click.echo(render(tree))
    if failure:
        click.echo(f"\nfailed: {failure}")
    click.echo(
        f"\nstore before async handlers: {_counts_text(before_store)}; queued messages: {before['queued_messages']}"
    )
    if async_runs:  # in the tree above; listed here in the order they ran
        click.echo(f"\nasync handlers ({len(async_runs)}):")
        for run in async_runs:
            click.echo(f"  handler {run.handler} -> run {run.flow} [{run.status.value}]{_error(run)}")
    click.echo(f"\nstore after draining: {_counts_text(after)}")
    for message in dead:
        what = message.body.get("handler") or message.body.get("source")
        click.echo(f"dead letter {message.id} ({what}): {message.errors[-1].error}")
    return code


async def _start(
    engine: Engine,
    source: str | None,
    event_type: str | None,
    event: str | None,
    flow: str | None,
    data: Any,
) -> tuple[Sequence[Any], str | None]:
    if source is not None:
        resolved = event_type or event_type_of(engine.plan, source, data)
        if resolved is None:
            raise click.UsageError(
                f"no --type given, and source {source!r} has no event_type_from that finds a type in the data"
            )
        runs = await engine.handle(source, resolved, data)
        if not runs:
            click.echo(f"no enabled flow matches ({source}, {resolved})", err=True)
        return runs, None
    if event is not None:
        if not isinstance(data, dict):
            raise click.BadParameter("event properties must be a JSON object", param_hint="--data")
        try:
            return [await engine.publish(event, data, source="flowbus-try")], None
        except (RunFailed, Rejected) as exc:
            failed = [exc.run] if isinstance(exc, RunFailed) and isinstance(exc.run, Run) else []
            return failed, exc.message
    if not isinstance(data, dict):
        raise click.BadParameter("flow inputs must be a JSON object", param_hint="--data")
    return [await engine.run_flow(flow or "", data)], None


async def _tree(backend: MemoryBackend, root: Any) -> TraceNode:
    return await trace_run(backend, root) if isinstance(root, Run) else await trace_event(backend, root)


def _exit_code(runs: Sequence[Run], failure: str | None) -> ExitCode:
    statuses = {run.status for run in runs}
    if RunStatus.FAILED in statuses or (failure and RunStatus.REJECTED not in statuses and "rejected" not in failure):
        return ExitCode.RUN_FAILED
    if RunStatus.REJECTED in statuses or failure:
        return ExitCode.RUN_REJECTED
    return ExitCode.OK


def _error(run: Run) -> str:
    return f": {run.error}" if run.error else ""


def _store_counts(backend: MemoryBackend) -> dict[str, int]:
    return {
        "events": len(backend.all_events()),
        **backend.entity_counts(),
    }


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in counts.items())
