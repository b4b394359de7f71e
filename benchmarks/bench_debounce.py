"""What debounce costs a publisher, and what it saves the workers: CPU and wall time per published
event whose async handler is plain, debounced on one key (every event folds into one burst), or
debounced on a key of its own (every event starts a burst); then the runs the workers make for
them.

CPU is user + sys of this process over the publishing only (the setup is not counted); on
PostgreSQL the server's own CPU is not in it, so the wall time is shown too. Ratios are to the
plain handler, measured in the same invocation.

    python benchmarks/bench_debounce.py [--events 2000] [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from flowbus.engine import Engine
from flowbus.publishing import active_config, publish_config
from flowbus.stores import open_backend
from flowbus.worker import Worker, WorkerSettings

CONFIG = """
events:
  - name: Changed
    properties: {Key: {type: String, required: true}, N: {type: Integer, required: true}}
flows:
  - name: Keep
    inputs: {N: {type: Integer, required: true}}
    steps: [{id: out, action: output, values: {n: "=inputs.N"}}]
handlers:
  - {name: keep, event: Changed, flow: Keep, bindings: {N: N}%s}
"""
DEBOUNCE = ', debounce: {period: 100ms, key: "=event.data.Key"}'
CASES = {"plain": ("", False), "one key": (DEBOUNCE, False), "a key each": (DEBOUNCE, True)}


def cpu() -> float:
    return time.process_time()


async def measure(url: str, project: str, events: int, debounce: str, own_keys: bool) -> tuple[float, float, int]:
    """CPU seconds and wall seconds per publish, and the runs the workers then made."""
    backend = open_backend(url, project)
    await publish_config(backend, CONFIG % debounce, file="bench.yaml")
    number, loaded = await active_config(backend)
    engine = Engine(loaded, backend=backend, config_version=number)
    for n in range(50):  # warm up: prepared statements, caches
        await engine.publish("Changed", {"Key": f"warm{n}", "N": n})
    await asyncio.sleep(0.2)
    await Worker(engine, WorkerSettings(batch_size=64)).run_until_idle()
    start_cpu, start_wall = cpu(), time.perf_counter()
    for n in range(events):
        await engine.publish("Changed", {"Key": f"k{n}" if own_keys else "k", "N": n})
    spent_cpu, spent_wall = cpu() - start_cpu, time.perf_counter() - start_wall
    await asyncio.sleep(0.2)  # the bursts' period
    runs = await Worker(engine, WorkerSettings(batch_size=64)).run_until_idle()
    await backend.close()
    return spent_cpu / events, spent_wall / events, len(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--postgres", help="a PostgreSQL URL (each case in a project of its own)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        stores = {"sqlite": f"sqlite:///{Path(folder) / 'bench.db'}"}
        if args.postgres:
            stores["postgres"] = args.postgres
        print(
            f"{'store':<9} {'handler':<11} {'CPU µs/publish':>15} {'ratio':>6} {'wall µs/publish':>16} {'ratio':>6} {'runs':>6}"
        )
        for store, url in stores.items():
            base: tuple[float, float] | None = None
            for index, (case, (debounce, own_keys)) in enumerate(CASES.items()):
                project = f"bench{index}_{int(time.time())}"
                per_cpu, per_wall, runs = asyncio.run(measure(url, project, args.events, debounce, own_keys))
                base = base or (per_cpu, per_wall)
                print(
                    f"{store:<9} {case:<11} {per_cpu * 1e6:>15.0f} {per_cpu / base[0]:>6.2f} "
                    f"{per_wall * 1e6:>16.0f} {per_wall / base[1]:>6.2f} {runs:>6}"
                )


if __name__ == "__main__":
    main()
