"""The cost of OpenTelemetry tracing per run: off, and on with 100% and 1% of traces sampled.

    python benchmarks/bench_otel.py [--messages 10000] [--repeats 3]

Tracing is decided once a process, so each setup runs in a fresh child process: an in-memory
engine takes ``--messages`` source messages, each running one trigger flow of four steps, through
the worker (``drain``), after a warm-up. The CPU time (user+sys, every thread of the child: the
span processor's export thread too) is taken over the steady part, up to and including the flush
of the last spans at shutdown. Spans go over OTLP/HTTP to a receiver in this process, whose own
CPU is not counted; it counts the spans it receives.

The setups: tracing off (no ``OTEL_*`` variable), off because the ``otel`` extra is missing while
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, and on with ``OTEL_TRACES_SAMPLER=parentbased_traceidratio``
at 1.0 and at 0.01. Ratios are to the first setup, measured in the same run.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CONFIG = """
project: {name: bench}
sources: [{name: shop}]
targets:
  - {name: store, type: store, keys: {Order: number}}
flows:
  - name: take_order
    source: shop
    event_type: order
    steps:
      - {id: number, action: set, vars: {n: "$.number"}}
      - id: check
        action: validate
        rules: [{check: "=size(vars.n) > 0", message: no number}]
      - {id: total, action: set, vars: {total: "=data.amount * 2"}}
      - {id: order, action: save, entity: Order, data: {number: "=vars.n", total: "=vars.total"}}
"""

SETUPS: list[tuple[str, dict[str, str], bool]] = [
    ("off: no OTEL_* variable", {}, False),
    ("off: OTEL_* set, no otel extra", {"OTEL_EXPORTER_OTLP_ENDPOINT": "{endpoint}"}, True),
    (
        "on: sampling 100%",
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "{endpoint}",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "1.0",
        },
        False,
    ),
    (
        "on: sampling 1%",
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "{endpoint}",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.01",
        },
        False,
    ),
]


def child(messages: int, warmup: int, hide_otel: bool) -> None:
    """Run in the child: print the CPU seconds of the steady part as JSON."""
    if hide_otel:  # as in an install without the otel extra
        sys.modules["opentelemetry"] = None  # type: ignore[assignment]
    import asyncio
    import time

    from flowbus import telemetry
    from flowbus.config import load_config_text
    from flowbus.engine import Engine
    from flowbus.stores.memory import MemoryBackend

    async def work() -> float:
        engine = Engine(load_config_text(CONFIG), backend=MemoryBackend("bench"))

        async def batch(start: int, count: int) -> None:
            for i in range(start, start + count):
                await engine.send("shop", "order", {"number": f"SO-{i}", "amount": i})
            runs = await engine.drain()
            if len(runs) != count or not all(r.succeeded for r in runs):
                raise SystemExit("not every message ran")

        await batch(0, warmup)
        cpu = time.process_time()
        for start in range(warmup, warmup + messages, 1000):
            await batch(start, min(1000, warmup + messages - start))
        telemetry.shutdown()  # the last spans' export is part of the cost
        return time.process_time() - cpu

    print(json.dumps({"cpu_s": asyncio.run(work()), "traced": telemetry.tracing() is not None}))


class Receiver:
    """OTLP/HTTP at ``/v1/traces``: answers 200 and counts the spans of each request."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        self.spans = 0
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest.FromString(body)
                count = sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
                with lock:
                    receiver.spans += count
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def measure(args: argparse.Namespace, environ: dict[str, str], hide: bool) -> dict[str, Any]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    command = [sys.executable, __file__, "--child", "--messages", str(args.messages), "--warmup", str(args.warmup)]
    if hide:
        command.append("--hide-otel")
    done = subprocess.run(command, env={**clean, **environ}, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--hide-otel", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.messages, args.warmup, args.hide_otel)
        return
    receiver = Receiver()
    print(
        f"{args.messages:,} messages, one run of 4 steps each, through the worker in memory; "
        f"CPU (user+sys) of the steady part, median of {args.repeats} processes"
    )
    print(f"{'setup':34}{'traced':>8}{'µs CPU/run':>12}{'vs off':>9}{'spans/run':>11}")
    base: float | None = None
    # the setups take turns, so that a slow spell of the shared machine falls on all of them
    results: dict[str, list[float]] = {name: [] for name, _, _ in SETUPS}
    spans: dict[str, int] = dict.fromkeys(results, 0)
    traced: dict[str, bool] = {}
    for _ in range(args.repeats):
        for name, environ, hide in SETUPS:
            before = receiver.spans
            found = measure(args, {k: v.format(endpoint=receiver.endpoint) for k, v in environ.items()}, hide)
            results[name].append(found["cpu_s"])
            traced[name] = found["traced"]
            spans[name] += receiver.spans - before
    for name, _, _ in SETUPS:
        per_run = statistics.median(results[name]) / args.messages
        base = base or per_run
        # the spans of the warm-up are exported too: counted over every message the child ran
        per_message = spans[name] / (args.repeats * (args.messages + args.warmup))
        print(
            f"{name:34}{'yes' if traced[name] else 'no':>8}{per_run * 1e6:>12.1f}{per_run / base:>9.2f}{per_message:>11.2f}"
        )
    receiver.server.shutdown()
    receiver.server.server_close()


if __name__ == "__main__":
    main()
