"""The syntax tree of an expression, as the parser builds it and the compiler reads it.

Every node knows its span in the source (for "in data.order" in messages), the offset
its errors point at, its depth (checked against ``Limits.max_depth`` as it is built,
so that compiling and evaluating can never recurse deeper than that) and its size (the
nodes under it, itself included: an upper bound of the operations it evaluates).

Nodes are not frozen, and the parser builds the common ones with positional
arguments, only because that is two to four times faster (compiling happens for every
expression of every config version); nothing changes a node once it is made. The
positional order is: start, end, at, depth, size, then the node's own fields.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Binary",
    "Call",
    "Conditional",
    "Field",
    "Has",
    "Index",
    "ListLiteral",
    "Literal",
    "MapLiteral",
    "Name",
    "Node",
    "Unary",
]


@dataclass(slots=True)
class Node:
    #: 0-based offset of the node's first character.
    start: int
    #: 0-based offset just past its last character.
    end: int
    #: 0-based offset an error in this node points at (an operator, a field name...).
    at: int
    #: 1 for a leaf, one more than its deepest child otherwise.
    depth: int
    #: 1 for a leaf, one more than the sizes of its children otherwise.
    size: int


@dataclass(slots=True)
class Literal(Node):
    """A number, string, bool or null written in the source."""

    value: object


@dataclass(slots=True)
class Name(Node):
    """A variable given by the caller: ``data``, ``inputs``..."""

    name: str


@dataclass(slots=True)
class Field(Node):
    """``operand.name``"""

    operand: Node
    name: str


@dataclass(slots=True)
class Index(Node):
    """``operand[index]``"""

    operand: Node
    index: Node


@dataclass(slots=True)
class Call(Node):
    """``name(args)``, or ``args[0].name(args[1:])`` when ``method`` is true."""

    name: str
    args: tuple[Node, ...]
    method: bool


@dataclass(slots=True)
class Has(Node):
    """The ``has(a.b)`` macro: whether the field exists, without reading it."""

    target: Field | Index


@dataclass(slots=True)
class Unary(Node):
    """``-operand`` or ``!operand``"""

    operator: str
    operand: Node


@dataclass(slots=True)
class Binary(Node):
    """``left operator right``, including ``&&``, ``||`` and ``in``."""

    operator: str
    left: Node
    right: Node


@dataclass(slots=True)
class Conditional(Node):
    """``condition ? then : otherwise``"""

    condition: Node
    then: Node
    otherwise: Node


@dataclass(slots=True)
class ListLiteral(Node):
    """``[a, b, c]``"""

    items: tuple[Node, ...]


@dataclass(slots=True)
class MapLiteral(Node):
    """``{'key': value, ...}``"""

    entries: tuple[tuple[Node, Node], ...]
