"""How long the ``flowbus`` command takes to start: ``flowbus --help`` and ``flowbus send`` (one
message from the compass example's source, its type found by the source's event_type_from).

    python benchmarks/bench_cli.py [--runs 20]

Each command runs as a fresh process, like a shell loop runs it; the table gives the median and
the 90th percentile beside ``python -c pass`` measured in the same run, because these machines are
shared and noisy. The flowbus imported is the one ``python -m flowbus`` finds (set PYTHONPATH to
measure another checkout).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "compass"


def timed(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    flowbus = [sys.executable, "-m", "flowbus"]
    with tempfile.TemporaryDirectory() as directory:
        env = {**os.environ, "FLOWBUS_DB": f"sqlite:///{Path(directory) / 'flowbus.db'}"}
        subprocess.run([*flowbus, "publish", str(EXAMPLES / "flowbus.yaml")], env=env, check=True, capture_output=True)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "flowbus --help": [*flowbus, "--help"],
            "flowbus send": [
                *flowbus, "send", "--source", "compass_inbound", "--data", f"@{EXAMPLES / 'upsert_company.json'}",
            ],
        }  # fmt: skip
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(runs):  # interleaved, so that a busy moment of the machine hits every command alike
            for name, args in commands.items():
                times[name].append(timed(args, env))
    print(f"{'command':<16} {'median ms':>10} {'p90 ms':>10}   ({runs} runs each)")
    for name, seconds in times.items():
        ordered = sorted(seconds)
        p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
        print(f"{name:<16} {statistics.median(ordered) * 1000:>10.0f} {p90 * 1000:>10.0f}")


if __name__ == "__main__":
    main()
