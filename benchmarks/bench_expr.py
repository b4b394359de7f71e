"""Compile and evaluate costs of flowbus paths and expressions, next to plain Python.

Run: ``python benchmarks/bench_expr.py``. Every figure is the median of several timeit
repeats, in microseconds per call. The "python" column is a hand-written function doing
the same work, and "x python" is how many times slower the expression evaluates.

Goals: evaluate under 2 us, compile under 50 us; a singular path 30-80x faster through
the fast path than through the general JSONPath engine.
"""

from __future__ import annotations

import statistics
import timeit
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import jsonpath

from flowbus.expr import compile_expression, compile_path

REPEATS = 7

VARIABLES: dict[str, Any] = {
    "data": {
        "total": Decimal("249.90"),
        "first": "Ada",
        "last": "Lovelace",
        "email": "ada@example.test",
        "payload": {"company": {"domain": "acme.test", "name": "Acme"}, "event": "upsert_company"},
    },
    "inputs": {"count": 1},
}
DATA = VARIABLES["data"]
RATE = Decimal("1.2")
ENGINE = jsonpath.JSONPathEnvironment(strict=True)


def per_call(function: Callable[[], object]) -> float:
    """Median microseconds per call of ``function``, over REPEATS timeit runs."""
    timer = timeit.Timer(function)
    number, _ = timer.autorange()
    runs = timer.repeat(repeat=REPEATS, number=number)
    return statistics.median(runs) / number * 1e6


def expression_row(name: str, source: str, baseline: Callable[[dict[str, Any]], object]) -> tuple[Any, ...]:
    compiled = compile_expression(source)
    if compiled.evaluate(VARIABLES) != baseline(VARIABLES):
        raise SystemExit(f"{source} and its baseline disagree")
    compile_us = per_call(lambda: compile_expression(source))
    evaluate_us = per_call(lambda: compiled.evaluate(VARIABLES))
    python_us = per_call(lambda: baseline(VARIABLES))
    return name, source, compile_us, evaluate_us, python_us


def main() -> None:
    rows = [
        expression_row("arithmetic", "data.total * 1.2", lambda v: v["data"]["total"] * RATE),
        expression_row(
            "conditional",
            "inputs.count == 1 ? 'first' : 'repeat'",
            lambda v: "first" if v["inputs"]["count"] == 1 else "repeat",
        ),
        expression_row(
            "concatenation",
            "data.first + ' ' + data.last + ' <' + data.email + '>'",
            lambda v: v["data"]["first"] + " " + v["data"]["last"] + " <" + v["data"]["email"] + ">",
        ),
    ]

    source = "$.payload.company.domain"
    fast = compile_path(source)
    engine = ENGINE.compile(source)
    found = fast.find_one(DATA)
    if not fast.singular or found != next(match.obj for match in engine.finditer(DATA)) or found != "acme.test":
        raise SystemExit(f"{source}: the fast path and the engine disagree")

    def by_hand() -> object:
        return DATA["payload"]["company"]["domain"]

    hand_us = per_call(by_hand)
    fast_row = (
        "path, fast",
        source,
        per_call(lambda: compile_path(source)),
        per_call(lambda: fast.find_one(DATA)),
        hand_us,
    )
    engine_row = (
        "path, engine",
        source,
        per_call(lambda: ENGINE.compile(source)),
        per_call(lambda: [match.obj for match in engine.finditer(DATA)]),
        hand_us,
    )
    rows += [fast_row, engine_row]

    header = f"{'row':<14} {'source':<56} {'compile us':>10} {'evaluate us':>11} {'python us':>9} {'x python':>8}"
    print(header)
    print("-" * len(header))
    for name, text, compile_us, evaluate_us, python_us in rows:
        ratio = evaluate_us / python_us
        print(f"{name:<14} {text:<56} {compile_us:>10.1f} {evaluate_us:>11.2f} {python_us:>9.2f} {ratio:>8.1f}")
    speedup = engine_row[3] / fast_row[3]
    print(f"\nsingular path: the fast path is {speedup:.0f}x faster than the general engine")


if __name__ == "__main__":
    main()
