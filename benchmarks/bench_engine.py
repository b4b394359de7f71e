"""In-memory engine throughput: publish N OrderPlaced-like events (1 sync + 3 async handlers),
and the cost of matching a message with 10 vs 10,000 flows in the config.

    python benchmarks/bench_engine.py [--events 20000]

Every figure is printed beside a plain-Python baseline measured in the same run (a dict of lists
of functions doing the same store work), because these machines are shared and noisy: read the
ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flowbus.config import load_config_text
from flowbus.engine import Engine
from flowbus.stores.memory import MemoryBackend

HANDLERS = [("Reserve", "sync"), ("Confirm", "async"), ("Notify", "async"), ("Count", "async")]

CONFIG = """
events:
  - name: OrderPlaced
    properties:
      OrderId: {type: EntityReference, entity: Order, required: true}
      CustomerId: {type: EntityReference, entity: Customer, required: true}
      OrderNumber: {type: String, required: true}
      TotalAmount: {type: Money, required: true}
      OrderDate: {type: DateTime, required: true}
      IsFirstOrder: {type: Boolean}
flows:
""" + "".join(
    f"""  - name: {name}
    inputs: {{OrderId: {{type: EntityReference, entity: Order, required: true}}, TotalAmount: {{type: Money}}}}
    steps:
      - {{id: write, action: save, entity: {name}, data: {{id: "=inputs.OrderId", total: "=inputs.TotalAmount"}}}}
"""
    for name, _ in HANDLERS
) + "handlers:\n" + "".join(
    f"  - {{name: {name}, event: OrderPlaced, flow: {name}, mode: {mode}, bindings: {{OrderId: OrderId, TotalAmount: TotalAmount}}}}\n"
    for name, mode in HANDLERS
)  # fmt: skip


def events(n: int) -> list[dict[str, Any]]:
    import datetime as dt

    when = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)
    return [
        {"OrderId": f"o{i}", "CustomerId": f"c{i % 100}", "OrderNumber": f"SO-{i}",
         "TotalAmount": Decimal("19.90"), "OrderDate": when, "IsFirstOrder": i % 7 == 0}
        for i in range(n)
    ]  # fmt: skip


def baseline(payloads: list[dict[str, Any]]) -> float:
    """The bare minimum: a dict of lists of functions, each writing one record to a dict."""
    store: dict[str, dict[str, Any]] = {name: {} for name, _ in HANDLERS}

    def writer(table: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
        def handle(data: dict[str, Any]) -> None:
            table[data["OrderId"]] = {"id": data["OrderId"], "total": data["TotalAmount"]}

        return handle

    subscribers = {"OrderPlaced": [writer(store[name]) for name, _ in HANDLERS]}
    start = time.perf_counter()
    for data in payloads:
        for handle in subscribers["OrderPlaced"]:
            handle(data)
    return time.perf_counter() - start


async def engine_run(payloads: list[dict[str, Any]]) -> float:
    engine = Engine(load_config_text(CONFIG), backend=MemoryBackend())
    start = time.perf_counter()
    for data in payloads:
        await engine.publish("OrderPlaced", data)
    runs = await engine.drain()
    elapsed = time.perf_counter() - start
    if len(runs) != 3 * len(payloads) or not all(r.succeeded for r in runs):
        raise SystemExit("the engine did not run every handler")
    return elapsed


def matching_config(flows: int) -> str:
    lines = ["flows:"]
    for i in range(flows):
        lines.append(
            f"  - {{name: f{i}, source: src{i % 50}, event_type: type{i}, steps: [{{id: s, action: set, vars: {{v: 1}}}}]}}"
        )
    return "\n".join(lines) + "\n"


async def matching_cost(flows: int, calls: int) -> tuple[float, float]:
    """Seconds to load the config, and seconds per handled message."""
    start = time.perf_counter()
    engine = Engine(load_config_text(matching_config(flows)), backend=MemoryBackend())
    load_s = time.perf_counter() - start
    target = flows // 2
    source, event_type = f"src{target % 50}", f"type{target}"
    start = time.perf_counter()
    for _ in range(calls):
        await engine.handle(source, event_type, {})
    return load_s, (time.perf_counter() - start) / calls


def median(fn: Callable[[], float], repeats: int) -> float:
    return statistics.median(fn() for _ in range(repeats))


@dataclass(frozen=True, kw_only=True)
class InMemory:
    """Publishing in memory, beside the plain-Python baseline of the same run: medians of ``repeats``."""

    events: int
    handler_runs: int
    repeats: int
    baseline_s: float
    engine_s: float
    #: the engine's CPU (user + sys of this process), which swings less than wall-clock time
    engine_cpu_s: float

    @property
    def baseline_runs_per_s(self) -> float:
        return self.handler_runs / self.baseline_s

    @property
    def engine_runs_per_s(self) -> float:
        return self.handler_runs / self.engine_s

    @property
    def of_baseline(self) -> float:
        """The engine's handler runs/s as a fraction of the baseline's."""
        return self.baseline_s / self.engine_s


def in_memory(n: int = 20_000, repeats: int = 3) -> InMemory:
    payloads = events(n)
    base_s = median(lambda: baseline(payloads), repeats)
    engine_cpu: list[float] = []

    def timed_engine_run() -> float:
        cpu_start = time.process_time()
        elapsed = asyncio.run(engine_run(payloads))
        engine_cpu.append(time.process_time() - cpu_start)
        return elapsed

    engine_s = median(timed_engine_run, repeats)
    return InMemory(
        events=n, handler_runs=n * len(HANDLERS), repeats=repeats, baseline_s=base_s, engine_s=engine_s,
        engine_cpu_s=statistics.median(engine_cpu),
    )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Matching:
    flows: int
    load_s: float
    #: seconds to handle one message
    handle_s: float


def matching(flows: Sequence[int] = (10, 10_000), calls: int = 5_000) -> list[Matching]:
    found = []
    for count in flows:
        load_s, handle_s = asyncio.run(matching_cost(count, calls))
        found.append(Matching(flows=count, load_s=load_s, handle_s=handle_s))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    memory = in_memory(args.events, args.repeats)
    n, runs = memory.events, memory.handler_runs
    print(f"publish {n:,} events x {len(HANDLERS)} handlers (1 sync, 3 async), in memory, median of {memory.repeats}")
    print(f"{'':28}{'events/s':>12}{'handler runs/s':>16}{'vs baseline':>13}")
    print(
        f"{'dict of lists of functions':28}{n / memory.baseline_s:>12,.0f}{memory.baseline_runs_per_s:>16,.0f}{'1.00':>13}"
    )
    print(
        f"{'flowbus Engine':28}{n / memory.engine_s:>12,.0f}{memory.engine_runs_per_s:>16,.0f}{memory.of_baseline:>13.3f}"
    )
    print(f"flowbus Engine CPU per handler run: {memory.engine_cpu_s / runs * 1e6:.1f} us (median)")

    print("\nmatching one message with N flows in the config")
    print(f"{'flows':>8}{'load (ms)':>12}{'handle (µs)':>13}{'vs 10 flows':>13}")
    small = None
    for cost in matching():
        small = small or cost.handle_s
        print(f"{cost.flows:>8,}{cost.load_s * 1000:>12.1f}{cost.handle_s * 1e6:>13.2f}{cost.handle_s / small:>13.2f}")


if __name__ == "__main__":
    main()
