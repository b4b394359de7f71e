"""Reading variables, fields and items: their compiled evaluators, and the errors that
explain a miss.

A run of field reads and literal indexes from a variable (``data.order.lines[0].sku``)
compiles to one *chain* that walks plain dicts and lists in a loop; anything less
common (another Mapping, a tuple, a miss) takes :func:`_step`, which every reader
shares, so a chain and a lone field read always agree.

The messages name the object by its expression text ("data.order") and say what was
there instead. In a *lenient* read (the argument of has() or coalesce()) a missing
variable, field, key or item, or a null on the way, yields MISSING instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from flowbus.expr.errors import ExpressionError, ExpressionRuntimeError
from flowbus.expr.limits import Evaluator, State
from flowbus.expr.values import MISSING, coerce, describe, kind, list_keys

__all__ = ["Step", "chain", "check_key", "field", "item"]

# Types admitted straight from the data without a call to coerce().
_PLAIN: Final = frozenset({type(None), bool, int, str, list, dict, tuple})

#: One link of a chain: (key, is_field, text of the object read from, column).
Step = tuple[object, bool, str, int]


def chain(root: str, root_column: int, steps: tuple[Step, ...], source: str, lenient: bool) -> Evaluator:
    """The evaluator of a variable followed by field reads and literal indexes."""
    general = _chain(root, root_column, steps, source, lenient)
    if len(steps) != 1 or not steps[0][1]:
        return general
    # ``data.total``, the most common read of all, in a closure of its own: one field
    # of a plain dict, or else the general chain (which also raises the errors).
    key = steps[0][0]

    def one_field(state: State) -> object:
        try:
            container = state.variables[root]
            if isinstance(container, dict):
                result = container[key]
                kind_of = type(result)
                if kind_of in _PLAIN or (kind_of is Decimal and result.is_finite()):
                    return result
        except KeyError:
            pass
        return general(state)

    return one_field


def _chain(root: str, root_column: int, steps: tuple[Step, ...], source: str, lenient: bool) -> Evaluator:
    def chain(state: State) -> object:
        try:
            value: Any = state.variables[root]
        except KeyError:
            if lenient:
                return MISSING
            raise _unset(root, state.variables).locate(source, root_column) from None
        column = root_column
        for key, is_field, where, step_column in steps:
            # Plain dicts and lists are read right here; everything else, and every
            # miss, goes through _step() for the full checks and messages.
            # (A dict subclass is a plain dict here: reading it runs its own __getitem__,
            # exactly as the general path would.)
            container = value
            if (type(key) is str and isinstance(value, dict)) or (
                type(key) is int and isinstance(value, (list, tuple))
            ):
                try:
                    value = container[key]
                    column = step_column
                    continue
                except (KeyError, IndexError):
                    pass
            value = _located_step(value, key, is_field, where, source, column, step_column, lenient)
            if value is MISSING:
                return MISSING
            column = step_column
        if type(value) in _PLAIN:
            return value
        try:
            return coerce(value)
        except ExpressionError as error:
            raise error.locate(source, column) from None

    return chain


def field(operand: Evaluator, name: str, where: str, source: str, column: int, lenient: bool) -> Evaluator:
    """The evaluator of ``operand.name`` for any operand; ``where`` is its text."""

    def field(state: State) -> object:
        # The operand raises located errors; only this node's own get its column.
        try:
            value = _step(operand(state), name, True, where, lenient)
            return value if type(value) in _PLAIN or value is MISSING else coerce(value)
        except ExpressionError as error:
            raise error.locate(source, column) from None

    return field


def item(operand: Evaluator, index: Evaluator, where: str, source: str, column: int, lenient: bool) -> Evaluator:
    """The evaluator of ``operand[index]`` for any operand and index."""

    def item(state: State) -> object:
        try:
            container = operand(state)
            value = _step(container, index(state), False, where, lenient)
            return value if type(value) in _PLAIN or value is MISSING else coerce(value)
        except ExpressionError as error:
            raise error.locate(source, column) from None

    return item


def _located_step(
    value: object,
    key: object,
    is_field: bool,
    where: str,
    source: str,
    value_column: int,
    column: int,
    lenient: bool,
) -> object:
    try:
        value = coerce(value)
    except ExpressionError as error:
        raise error.locate(source, value_column) from None
    try:
        return _step(value, key, is_field, where, lenient)
    except ExpressionError as error:
        raise error.locate(source, column) from None


def _step(container: Any, key: object, is_field: bool, where: str, lenient: bool) -> object:
    """``container.key`` or ``container[key]``, with every check and every message."""
    if isinstance(container, Mapping):
        try:
            return container[key if is_field else check_key(key)]
        except KeyError:
            if lenient:
                return MISSING
            if is_field:
                raise ExpressionRuntimeError(f"no field '{key}' in {where}; {list_keys(container)}") from None
            shown = describe(key) if isinstance(key, str) else str(key)
            raise ExpressionRuntimeError(f"no key {shown} in {where}; {list_keys(container)}") from None
    if lenient and (container is None or container is MISSING):
        return MISSING
    if is_field:
        message = f"{where} is {_article(kind(container))}, so it has no field '{key}'"
        if isinstance(container, (list, tuple)):
            message += f"; pick an item first, like {where}[0].{key}"
        raise ExpressionRuntimeError(message)
    if isinstance(container, (list, tuple)):
        position = _check_index(key)
        try:
            return container[position]
        except IndexError:
            if lenient:
                return MISSING
            count = len(container)
            noun = "item" if count == 1 else "items"
            raise ExpressionRuntimeError(
                f"index {position} is out of range for {where}, a list of {count} {noun}"
            ) from None
    raise ExpressionRuntimeError(
        f"{where} is {_article(kind(container))}; only lists and maps can be indexed with [...]"
    )


def check_key(key: object) -> object:
    """A map key: a string or an int (a bool would collide with 1 and 0)."""
    # Values are admitted with their exact base types (see coerce()), so exact checks suffice.
    if type(key) is str or type(key) is int:
        return key
    raise ExpressionRuntimeError(f"a map key must be a string or an int, not {kind(key)}")


def _check_index(index: object) -> int:
    if type(index) is int:
        return index
    raise ExpressionRuntimeError(f"a list index must be an int, not {kind(index)}")


def _unset(name: str, variables: Mapping[str, object]) -> ExpressionRuntimeError:
    names = sorted(str(key) for key in list(variables)[:50])
    listed = ", ".join(names) if names else "(none)"
    return ExpressionRuntimeError(f"no variable '{name}'; the variables are: {listed}")


def _article(value_kind: str) -> str:
    if value_kind == "null":
        return "null"
    article = "an" if value_kind[0] in "aeiou" else "a"
    return f"{article} {value_kind}"
