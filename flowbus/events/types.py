"""Property types (String, Money, DateTime...) as pydantic annotations.

Each annotation accepts what JSON or Python callers naturally send for that type and yields
one canonical Python value: ``Decimal`` for numbers with fractions, an aware UTC ``datetime``,
a canonical lower-case string for a Guid. A boolean is never a number; a String is never a
number; Decimal and Money also accept numeric text (JSON clients often send money as text),
and DateTime and Date accept ISO 8601 text.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
)

MAX_STRING_LENGTH = 1_000_000
DEFAULT_MONEY_SCALE = 2


def _to_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC)


def _no_bool(value: Any) -> Any:
    # pydantic's lax Decimal takes True as 1; a boolean is never a number here
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


def _money_scale(scale: int) -> Any:
    def check(value: Decimal) -> Decimal:
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > scale:
            raise ValueError(f"money allows at most {scale} decimal places, got {value}")
        return value

    return AfterValidator(check)


Text = Annotated[StrictStr, Field(max_length=MAX_STRING_LENGTH)]
Number = Annotated[Decimal, BeforeValidator(_no_bool), Field(allow_inf_nan=False, max_digits=40)]
Timestamp = Annotated[AwareDatetime, AfterValidator(_to_utc)]
Reference = Annotated[StrictStr, Field(min_length=1, max_length=256)]
GuidText = Annotated[UUID, AfterValidator(str)]

SCALAR_TYPES: dict[str, Any] = {
    "String": Text,
    "Integer": StrictInt,
    "Decimal": Number,
    "Boolean": StrictBool,
    "DateTime": Timestamp,
    "Date": dt.date,
    "EntityReference": Reference,
    "Guid": GuidText,
    "Object": dict[str, Any],
}

#: type names whose values may flow into an input of another type (source -> accepted targets)
WIDENINGS: dict[str, frozenset[str]] = {
    "Integer": frozenset({"Decimal", "Money"}),
    "Money": frozenset({"Decimal"}),
    "EntityReference": frozenset({"String"}),
    "Guid": frozenset({"String", "EntityReference"}),
}


def annotation_for(type_name: str, *, items: str | None = None, scale: int | None = None) -> Any:
    """The pydantic annotation validating one property of ``type_name``."""
    if type_name == "Money":
        return Annotated[Number, _money_scale(DEFAULT_MONEY_SCALE if scale is None else scale)]
    if type_name == "List":
        item = Any if items is None else annotation_for(items)
        return list[item]  # type: ignore[valid-type]
    return SCALAR_TYPES[type_name]


def assignable(source: str, target: str) -> bool:
    """Whether a value of type ``source`` is accepted where ``target`` is declared."""
    return source == target or target in WIDENINGS.get(source, frozenset())
