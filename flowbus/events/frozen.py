"""Deeply immutable data: what an event instance carries once published."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, NoReturn


class FrozenDict(dict[str, Any]):
    """A dict that refuses every change after construction.

    A dict subclass (not a ``MappingProxyType``) so that reads stay at C speed and JSON,
    expressions and pydantic treat it as the plain mapping it is.
    """

    __slots__ = ()

    def _refuse(self, *_args: Any, **_kwargs: Any) -> NoReturn:
        raise TypeError("event data is immutable")

    __setitem__ = __delitem__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse
    __ior__ = _refuse

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items(), key=lambda kv: kv[0])))

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))

    def __copy__(self) -> FrozenDict:
        return self

    def __deepcopy__(self, _memo: Any) -> FrozenDict:
        return self


_SCALARS = frozenset({str, int, bool, type(None), Decimal, float, dt.datetime, dt.date, dt.timedelta})


def freeze(value: Any) -> Any:
    """``value`` with every dict made a :class:`FrozenDict` and every list a tuple."""
    kind = type(value)
    if kind in _SCALARS or kind is FrozenDict:
        return value
    if kind is dict or isinstance(value, Mapping):
        frozen = {}
        for key, item in value.items():
            frozen[str(key)] = item if type(item) in _SCALARS else freeze(item)
        return FrozenDict(frozen)
    if kind is list or kind is tuple or isinstance(value, list | tuple):
        return tuple(item if type(item) in _SCALARS else freeze(item) for item in value)
    return value


def thaw(value: Any) -> Any:
    """A plain, mutable copy of frozen data (dicts and lists)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [thaw(v) for v in value]
    return value
