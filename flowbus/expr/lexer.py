"""Turn expression text into tokens.

Each token keeps its offset so that every later error can point at its column.
Lexing is a loop over precompiled regular expressions, so its cost grows with the
length of the text and never with its shape. Tokens are plain tuples, because
compiling happens for every expression of every config version and a tuple is
built an order of magnitude faster than a named tuple.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Final

from flowbus.expr.errors import ExpressionLimitError, ExpressionSyntaxError
from flowbus.expr.values import DECIMAL_CONTEXT

__all__ = ["KEYWORDS", "Token", "describe_token", "tokenize"]


#: (kind, value, start, end): the kind is "int", "decimal", "string", "ident", "eof",
#: a keyword, or the punctuation itself; the value is a literal's value, a name, or the
#: punctuation; start and end are 0-based offsets of the first and past the last character.
Token = tuple[str, object, int, int]


KEYWORDS: Final = frozenset({"true", "false", "null", "in"})

# One pattern for the common tokens; a string holding escapes, and every error, take
# the slow path in _irregular().
_TOKEN: Final = re.compile(
    r"[ \t\r\n]*(?:"
    r"(?P<ident>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<digit>[0-9])"
    r"|(?P<string>'[^'\\\n\r]*'|\"[^\"\\\n\r]*\")"
    r"|(?P<punctuation>==|!=|<=|>=|&&|\|\||[()\[\]{}.,:?+\-*/%!<>])"
    r"|(?P<end>\Z))"
)
_NUMBER: Final = re.compile(
    r"0[xX][0-9a-fA-F]+"
    r"|(?P<decimal>[0-9]+\.[0-9]+(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+)"
    r"|[0-9]+"
)
# A run of characters needing no attention inside a string: quotes, backslashes and
# line ends are handled one by one.
_PLAIN_CHARS: Final = {quote: re.compile(rf"[^{quote}\\\n\r]+") for quote in "'\""}
# Operators borrowed from other languages, and what to write instead.
_MISTAKES: Final = {
    "=": "use '==' to compare",
    "&": "use '&&' for 'and'",
    "|": "use '||' for 'or'",
}
_ESCAPES: Final = {
    "n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v",
    "0": "\0", "\\": "\\", "'": "'", '"': '"', "`": "`", "/": "/",
}  # fmt: skip
_HEX_ESCAPES: Final = {"x": 2, "u": 4, "U": 8}


def describe_token(token: Token) -> str:
    """How a token is named in an error message."""
    kind = token[0]
    if kind == "eof":
        return "end of expression"
    if kind == "ident":
        return f"name '{token[1]}'"
    if kind == "string":
        return "string"
    if kind in ("int", "decimal"):
        return "number"
    return f"'{kind}'"


def tokenize(source: str, max_int_digits: int) -> list[Token]:
    """The tokens of ``source``, ending with an "eof" token."""
    tokens: list[Token] = []
    append = tokens.append
    position = 0
    length = len(source)
    match_token = _TOKEN.match
    while True:
        match = match_token(source, position)
        if match is None:
            # Skip the blanks the pattern would have taken, then take the slow path.
            while source[position] in " \t\r\n":
                position += 1
            position = _irregular(source, position, tokens)
            continue
        kind = match.lastgroup
        end = match.end()
        if kind == "ident":
            word = match.group(kind)
            append((word if word in KEYWORDS else "ident", word, end - len(word), end))
        elif kind == "punctuation":
            symbol = match.group(kind)
            append((symbol, symbol, end - len(symbol), end))
        elif kind == "string":
            start = match.start(kind)
            append(("string", source[start + 1 : end - 1], start, end))
        elif kind == "digit":
            end = _number(source, match.start(kind), tokens, max_int_digits)
        else:
            append(("eof", None, length, length))
            return tokens
        position = end


def _irregular(source: str, position: int, tokens: list[Token]) -> int:
    """A string with escapes, or an error: what the token pattern does not match."""
    char = source[position]
    if char in "'\"":
        return _string(source, position, tokens)
    if char in _MISTAKES:
        hint = _MISTAKES[char]
        if char == "=" and position == 0:
            hint = "write the expression without the leading '=' of the config value"
        raise ExpressionSyntaxError(f"unexpected '{char}'", source=source, column=position + 1, hint=hint)
    raise ExpressionSyntaxError(f"unexpected character {char!r}", source=source, column=position + 1)


def _number(source: str, start: int, tokens: list[Token], max_int_digits: int) -> int:
    match = _NUMBER.match(source, start)
    if match is None:  # pragma: no cover - the caller saw a digit
        raise ExpressionSyntaxError("bad number", source=source, column=start + 1)
    end = match.end()
    if end < len(source) and (source[end].isalnum() or source[end] == "_"):
        raise ExpressionSyntaxError(f"unexpected {source[end]!r} after a number", source=source, column=end + 1)
    text = match.group()
    if match.group("decimal") is not None:
        value = Decimal(text)
        context = DECIMAL_CONTEXT
        if not context.Emin <= value.adjusted() <= context.Emax:
            raise ExpressionLimitError(
                f"the number {text} is out of the decimal range", source=source, column=start + 1
            )
        if len(value.as_tuple().digits) > context.prec:
            # Literals must be exact rather than silently rounded.
            raise ExpressionSyntaxError(
                f"the number {text} has more than {context.prec} significant digits",
                source=source,
                column=start + 1,
            )
        tokens.append(("decimal", value, start, end))
        return end
    is_hex = text[:2] in ("0x", "0X")
    # Check the length before int(): Python refuses to parse over 4,300 digits.
    if (not is_hex and len(text) > max_int_digits) or (is_hex and int(text[2:], 16) >= 10**max_int_digits):
        raise ExpressionLimitError(
            f"the number has more than {max_int_digits} digits (limit max_int_digits)",
            source=source,
            column=start + 1,
        )
    number = int(text[2:], 16) if is_hex else int(text)
    tokens.append(("int", number, start, end))
    return end


def _string(source: str, start: int, tokens: list[Token]) -> int:
    quote = source[start]
    plain = _PLAIN_CHARS[quote]
    parts: list[str] = []
    position = start + 1
    length = len(source)
    while True:
        match = plain.match(source, position)
        if match is not None:
            parts.append(match.group())
            position = match.end()
        if position >= length or source[position] in "\n\r":
            raise ExpressionSyntaxError(
                "unterminated string", source=source, column=start + 1,
                hint=f"close it with {quote}",
            )  # fmt: skip
        char = source[position]
        if char == quote:
            tokens.append(("string", "".join(parts), start, position + 1))
            return position + 1
        # A backslash.
        position = _escape(source, position, parts)


def _escape(source: str, position: int, parts: list[str]) -> int:
    letter = source[position + 1 : position + 2]
    if letter in _ESCAPES:
        parts.append(_ESCAPES[letter])
        return position + 2
    width = _HEX_ESCAPES.get(letter)
    if width is None:
        shown = f"\\{letter}" if letter else "\\"
        raise ExpressionSyntaxError(
            f"unknown escape '{shown}'",
            source=source,
            column=position + 1,
            hint="known escapes: \\n \\t \\r \\\\ \\' \\\" \\xHH \\uHHHH \\UHHHHHHHH",
        )
    digits = source[position + 2 : position + 2 + width]
    if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
        raise ExpressionSyntaxError(f"'\\{letter}' needs {width} hex digits", source=source, column=position + 1)
    code = int(digits, 16)
    end = position + 2 + width
    if 0xD800 <= code <= 0xDBFF and source[end : end + 2] == "\\u":
        # A UTF-16 surrogate pair written as two escapes, as JSON does.
        low_digits = source[end + 2 : end + 6]
        if len(low_digits) == 4 and all(c in "0123456789abcdefABCDEF" for c in low_digits):
            low = int(low_digits, 16)
            if 0xDC00 <= low <= 0xDFFF:
                parts.append(chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)))
                return end + 6
    if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
        raise ExpressionSyntaxError(f"'\\{letter}{digits}' is not a character", source=source, column=position + 1)
    parts.append(chr(code))
    return end
