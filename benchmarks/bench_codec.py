"""CPU per encode and per decode of stored values: flowbus.codec beside the json module, orjson and
msgspec, for what a W1 run writes and reads and for a larger record.

Run: ``python benchmarks/bench_codec.py``. Every figure is the median of several repeats of a loop
timed with ``time.process_time`` (CPU, not wall time), in microseconds per call. Each column does
the codec's whole job, tags included, so each reads back the value it was given:

- ``flowbus.codec``: the json module's C encoder called directly, with the tagging hook, and a
  decoder built once with an ``object_hook`` that reads the tags;
- ``json.dumps``: the same with ``json.dumps``/``json.loads``, building their coder on every call;
- ``orjson``: ``orjson.dumps`` with the tagging hook (datetimes passed through to it), and
  ``orjson.loads`` followed by a walk in Python reading the tags (it has no ``object_hook``);
- ``msgspec``: ``msgspec.json``, after a walk in Python tagging what it would otherwise write its
  own way (``Decimal`` and datetimes as bare strings, which its ``enc_hook`` never sees), and
  reading back with the same walk as orjson.

orjson and msgspec are not flowbus dependencies: their columns are left out unless they are
installed (``pip install orjson msgspec``). Neither replaced the json module: see the codec's
docstring for why.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from flowbus import codec
from flowbus.events.frozen import freeze
from flowbus.ids import new_id
from flowbus.runtime.records import StepRun, StepStatus

REPEATS = 5
WHEN = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)

INPUTS = freeze({"OrderId": "o1", "TotalAmount": Decimal("19.90")})
STEPS = (
    StepRun(
        "write",
        "write",
        "save",
        StepStatus.SUCCEEDED,
        freeze({"entity": "Confirm", "data": {"id": "o1", "total": Decimal("19.90")}}),
        freeze({"id": "o1", "total": Decimal("19.90"), "version": 1}),
        None,
        0.000_412,
    ),
)
BODY = freeze({"handler": "Confirm", "event_id": new_id()})
EVENT_DATA = freeze(
    {
        "OrderId": "o1",
        "CustomerId": "c1",
        "OrderNumber": "N-1",
        "TotalAmount": Decimal("19.90"),
        "OrderDate": WHEN,
    }
)
LARGE = freeze(
    {
        **{f"field_{i}": f"value number {i}" for i in range(20)},
        **{f"count_{i}": i * 1_000 for i in range(10)},
        **{f"amount_{i}": Decimal(f"{i}.{i:02d}") for i in range(5)},
        "placed_at": WHEN,
        "ship_by": WHEN.date(),
        "hold": dt.timedelta(hours=2),
        "flags": [True, False, None],
        "customer": {"id": "c1", "name": "Ada Lovelace", "email": "ada@example.test", "tier": "gold"},
        "address": {"street": "1 Analytical Way", "city": "London", "zip": "N1", "country": "GB"},
        "lines": [
            {"sku": f"sku-{i}", "quantity": i + 1, "price": Decimal("4.95"), "tags": ["a", "b"]} for i in range(8)
        ],
        "notes": "déjà vu, naïve café",
    }
)
#: what a W1 handler run writes (its inputs, its steps, the message body it was claimed with and
#: the event it reads) and reads back; its outputs are empty, stored as "{}" without the codec
W1 = {"inputs": INPUTS, "steps": STEPS, "message body": BODY, "event data": EVENT_DATA}
VALUES = {**W1, "large record": LARGE}


def _untagged(value: Any) -> Any:
    """``value`` with its tags read, innermost first, as json's ``object_hook`` reads them."""
    if type(value) is dict:
        for key, item in value.items():
            if type(item) is dict or type(item) is list:
                value[key] = _untagged(item)
        return codec._untag(value)
    if type(value) is list:
        for index, item in enumerate(value):
            if type(item) is dict or type(item) is list:
                value[index] = _untagged(item)
    return value


def _tagged(value: Any) -> Any:
    """``value`` with what msgspec would write its own way tagged, and tuples made lists."""
    if isinstance(value, dict):
        return {key: _tagged(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_tagged(item) for item in value]
    if isinstance(value, Decimal | dt.date | dt.timedelta):
        return codec._tag(value)
    return value


def _json_dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=codec._tag)


def _json_loads(text: str) -> Any:
    return json.loads(text, object_hook=codec._untag)


CODECS: dict[str, tuple[Callable[[Any], str], Callable[[str], Any]]] = {
    "flowbus.codec": (codec.encode, codec.decode),
    "json.dumps": (_json_dumps, _json_loads),
}

try:
    import orjson
except ImportError:  # not a flowbus dependency: its column is left out
    pass
else:

    def _orjson_dumps(value: Any) -> str:
        return orjson.dumps(value, default=codec._tag, option=orjson.OPT_PASSTHROUGH_DATETIME).decode()

    def _orjson_loads(text: str) -> Any:
        value = orjson.loads(text)
        return _untagged(value) if '"$' in text else value

    CODECS["orjson"] = (_orjson_dumps, _orjson_loads)

try:
    import msgspec
except ImportError:  # not a flowbus dependency: its column is left out
    pass
else:
    _MSGSPEC_ENCODER = msgspec.json.Encoder()
    _MSGSPEC_DECODER = msgspec.json.Decoder()

    def _msgspec_encode(value: Any) -> str:
        return _MSGSPEC_ENCODER.encode(_tagged(value)).decode()

    def _msgspec_decode(text: str) -> Any:
        value = _MSGSPEC_DECODER.decode(text)
        return _untagged(value) if '"$' in text else value

    CODECS["msgspec"] = (_msgspec_encode, _msgspec_decode)


def per_call(function: Callable[[Any], object], argument: Any) -> float:
    """Median CPU microseconds per call of ``function(argument)``, over REPEATS loops."""
    number = 1
    while True:
        start = time.process_time()
        for _ in range(number):
            function(argument)
        if time.process_time() - start >= 0.05:
            break
        number *= 4
    runs = []
    for _ in range(REPEATS):
        start = time.process_time()
        for _ in range(number):
            function(argument)
        runs.append(time.process_time() - start)
    return statistics.median(runs) / number * 1e6


def check(name: str, value: Any) -> None:
    """Every codec reads back what flowbus.codec reads back from its own text."""
    expected = codec.decode(codec.encode(value))
    for codec_name, (encode, decode) in CODECS.items():
        if decode(encode(value)) != expected:
            raise SystemExit(f"{codec_name} does not read back {name} as json does")


def main() -> None:
    for name, value in VALUES.items():
        check(name, value)
    names = list(CODECS)
    print(f"CPU microseconds per call (median of {REPEATS}); x fastest: flowbus.codec's time over the fastest's\n")
    print(f"{'':26}" + "".join(f"{n:>15}" for n in names) + f"{'x fastest':>11}")
    totals = {n: [0.0, 0.0] for n in names}
    for name, value in VALUES.items():
        text = codec.encode(value)
        for index, (operation, argument) in enumerate((("encode", value), ("decode", text))):
            figures = {n: per_call(CODECS[n][index], argument) for n in names}
            if name in W1:
                for n in names:
                    totals[n][index] += figures[n]
            ratio = figures["flowbus.codec"] / min(figures.values())
            row = "".join(f"{figures[n]:>15.2f}" for n in names)
            print(f"{operation + ' ' + name:26}{row}{ratio:>10.2f}x")
    print()
    for index, operation in enumerate(("encode", "decode")):
        row = "".join(f"{totals[n][index]:>15.2f}" for n in names)
        ratio = totals["flowbus.codec"][index] / min(t[index] for t in totals.values())
        print(f"{'W1 ' + operation:26}{row}{ratio:>10.2f}x")
    whole = {n: sum(totals[n]) for n in names}
    row = "".join(f"{whole[n]:>15.2f}" for n in names)
    print(f"{'W1 encode + decode':26}{row}{whole['flowbus.codec'] / min(whole.values()):>10.2f}x")


if __name__ == "__main__":
    main()
