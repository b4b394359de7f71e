"""How stored data is written as JSON: exact decimals and real times survive the round trip.

Plain JSON would turn a ``Decimal`` into a float (or text) and a ``datetime`` into text, so a
record read back would not be the record written. Values JSON lacks are written as one-key
tagged objects (``{"$decimal": "19.90"}``, ``{"$datetime": "2026-11-22T10:00:00+00:00"}``),
using the C encoder's ``default`` hook so the common case stays fast.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

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


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_tag)
# the C encoder that JSONEncoder.encode builds anew on every call, with the same settings, called
# directly: several values are encoded per run, and the Python layers around it cost more than
# encoding a small record. A fresh markers dict per call keeps the circular-reference check, and
# keeps calls from several threads apart. None where the C accelerator is missing.
_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)


def encode(value: Any) -> str:
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
