"""The errors of paths and expressions.

::

    FlowbusError
    └── ExpressionError              a path or expression does not compile or evaluate
        ├── ExpressionSyntaxError    the text does not parse, or names an unknown function
        │                            or variable (always at compile time)
        ├── ExpressionRuntimeError   evaluation failed: a missing field, a type mismatch,
        │                            an index out of range, a division by zero...
        └── ExpressionLimitError     a limit was reached, at compile time (source length,
                                     nesting depth) or at evaluation (operations, sizes)

Every error carries ``source`` (the text of the path or expression) and ``column``
(1-based offset into ``source``, or ``None``), so that a caller can prefix the message
with its own location. ``str(error)`` is the whole message: the reason on the first
line, then the source with a caret under the column.
"""

from __future__ import annotations

from flowbus.errors import FlowbusError

__all__ = [
    "ExpressionError",
    "ExpressionLimitError",
    "ExpressionRuntimeError",
    "ExpressionSyntaxError",
]

# How much of a long source line to show around the caret.
_WINDOW = 72


class ExpressionError(FlowbusError):
    """A path or expression did not compile or evaluate."""

    def __init__(
        self,
        message: str | None = None,
        *,
        source: str = "",
        column: int | None = None,
    ) -> None:
        super().__init__(message)
        #: The reason alone, without location or source excerpt.
        self.reason: str = self.message
        #: The text of the path or expression (without the leading '=' of a config value).
        self.source: str = source
        #: 1-based offset of the offending character in ``source``, or None.
        self.column: int | None = column
        self._render()

    def locate(self, source: str, column: int | None) -> ExpressionError:
        """Attach a location to an error raised where none was known; return ``self``.

        Errors raised deep inside a function do not know where they are; the node that
        called the function fills in its own position. A located error keeps its place.
        """
        if self.column is None and not self.source:
            self.source = source
            self.column = column
            self._render()
        return self

    def _head(self) -> str:
        # For most errors the caret under the source says where; the first line says why.
        return self.reason

    def _render(self) -> None:
        text = self._head() + excerpt(self.source, self.column)
        self.message = text
        self.args = (text,)


class ExpressionSyntaxError(ExpressionError):
    """The path or expression does not parse."""

    def __init__(
        self,
        message: str | None = None,
        *,
        source: str = "",
        column: int | None = None,
        hint: str = "",
    ) -> None:
        #: Advice that follows the location, such as "did you mean: size?".
        self.hint = hint
        super().__init__(message, source=source, column=column)

    def _head(self) -> str:
        head = self.reason
        if self.column is not None:
            head = f"{head} at column {self.column}"
        if self.hint:
            head = f"{head}; {self.hint}"
        return head


class ExpressionRuntimeError(ExpressionError):
    """The expression failed while it was evaluated."""


class ExpressionLimitError(ExpressionError):
    """The path or expression went past one of its limits."""


def excerpt(source: str, column: int | None) -> str:
    """The source line holding ``column`` and a caret under it, or "" when unknown.

    ``column`` counts characters from the start of the whole source; a newline counts
    as one. A long line is cut to a window around the caret.
    """
    if not source or column is None:
        return ""
    offset = min(max(column - 1, 0), len(source))
    line_start = source.rfind("\n", 0, offset) + 1
    line_end = source.find("\n", offset)
    if line_end < 0:
        line_end = len(source)
    line = source[line_start:line_end].replace("\t", " ").replace("\r", " ")
    caret_at = offset - line_start
    if len(line) > _WINDOW:
        start = max(0, min(caret_at - _WINDOW // 2, len(line) - _WINDOW))
        prefix = "..." if start > 0 else ""
        suffix = "..." if start + _WINDOW < len(line) else ""
        line = prefix + line[start : start + _WINDOW] + suffix
        caret_at = caret_at - start + len(prefix)
    return f"\n  {line}\n  {' ' * caret_at}^"
