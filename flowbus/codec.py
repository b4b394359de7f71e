"""How stored data is written as JSON: exact decimals and real times survive the round trip.

Plain JSON would turn a ``Decimal`` into a float (or text) and a ``datetime`` into text, so a
record read back would not be the record written. Values JSON lacks are written as one-key
tagged objects (``{"$decimal": "19.90"}``, ``{"$datetime": "2026-11-22T10:00:00+00:00"}``).

orjson writes every value, two to four times faster than the json module's C encoder; the json
module's encoder, which this module used before, takes every value orjson would write differently
or refuse, so that the text written is what it was:

- orjson writes a NaN or infinite float as ``null``; json writes ``NaN``/``Infinity``, which
  the decoder reads back as the float they were;
- orjson refuses integers beyond 64 bits, lone surrogates, keys that are not strings, float
  subclasses and nesting deeper than 255 levels, where json writes them (or raises as it did).

Text is read by the json module, as before. orjson reads untagged text (a message body) faster
in a loop, but not in a worker once the checks it needs are paid (an integer beyond 64 bits,
which it reads as a float; NaN, lone surrogates and byte order marks, which it refuses); and
finding the tags in its result in Python costs more than json's whole decode, whose
``object_hook`` reads them as the C scanner builds each object.

Two differences remain: a float may be written in another of its shortest forms (``0.00001``
where json wrote ``1e-05``; both read back as the same float), and orjson writes a ``UUID`` as
its text and a plain ``Enum`` member as its value, where json refused them.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import orjson

from flowbus.errors import FlowbusError


class CodecError(FlowbusError):
    """A value cannot be stored."""


def _tag(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {"$duration": value.total_seconds()}
    if isinstance(value, tuple):
        return list(value)
    raise CodecError(f"a {type(value).__name__} cannot be stored")


#: datetimes reach the hook, which tags them, instead of being written as bare text
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME


def encode(value: Any) -> str:
    try:
        data = orjson.dumps(value, default=_tag, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        # what orjson refuses (a big integer, a lone surrogate...) json writes, or refuses in its words
        return _json_encode(value)
    if b"null" in data and _holds_non_finite_float(value):
        return _json_encode(value)  # NaN, not null
    return data.decode()


def _holds_non_finite_float(value: Any) -> bool:
    if type(value) is float:
        return value - value != 0.0  # NaN for NaN and both infinities, 0.0 for every other float
    if not isinstance(value, dict | list | tuple):
        return False
    stack = [value]
    while stack:
        container = stack.pop()
        for item in container.values() if isinstance(container, dict) else container:
            kind = type(item)
            if kind is str or kind is int or item is None or kind is Decimal:
                continue
            if kind is float:
                if item - item != 0.0:
                    return True
            elif kind is dict or kind is list or kind is tuple or isinstance(item, dict | list | tuple):
                stack.append(item)
    return False


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_tag)
# the C encoder that JSONEncoder.encode builds anew on every call, with the same settings, called
# directly: the Python layers around it cost more than encoding a small record. A fresh markers
# dict per call keeps the circular-reference check, and keeps calls from several threads apart.
# None where the C accelerator is missing.
_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)


def _json_encode(value: Any) -> str:
    if _make_encoder is None or type(value) is str:
        return _ENCODER.encode(value)
    # the same positional settings JSONEncoder.iterencode passes (indent None: one line)
    chunks = _make_encoder({}, _tag, _encode_str, None, ":", ",", False, False, True)(value, 0)
    return "".join(chunks)


_encode_str: Any = getattr(json.encoder, "c_encode_basestring", None) or json.encoder.py_encode_basestring


_DECODERS: dict[str, Any] = {
    "$decimal": Decimal,
    "$datetime": dt.datetime.fromisoformat,
    "$date": dt.date.fromisoformat,
    "$duration": lambda seconds: dt.timedelta(seconds=seconds),
}


def _untag(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        key, value = next(iter(obj.items()))
        decoder = _DECODERS.get(key)
        if decoder is not None:
            # user data that merely looks like a tag (a one-key object named "$date"...) stays as it is
            try:
                return decoder(value)
            except (ArithmeticError, ValueError, TypeError):
                return obj
    return obj


#: built once: json.loads with a hook builds a decoder on every call
_DECODER = json.JSONDecoder(object_hook=_untag)


def decode(text: str | bytes) -> Any:
    if not isinstance(text, str):  # bytes: json.loads detects their encoding
        return json.loads(text, object_hook=_untag)
    return _DECODER.decode(text)
