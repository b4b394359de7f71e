"""Path convertors of the API's routes.

A parameter that shares its place with a fixed word, as ``/dead-letters/{message_id}`` does with
``/dead-letters/redrive``, would take the word as a value: a GET of ``/dead-letters/redrive``
would be a GET of a dead letter named ``redrive``, and a 405 there would allow GET, though the
document lists only POST. ``{message_id:dead_letter}`` takes any segment but that word, so the
word routes by itself and the 405 names what the document does.

Not ids alone: a segment that is not an id still reaches its handler, which checks the key before
the value (401 and 403 come first, then 422 for the id's pattern, which the document states).
"""

from __future__ import annotations

import re

from starlette.convertors import Convertor, register_url_convertor


def segment_except(*words: str) -> str:
    """The regex of one path segment, any but ``words`` (the fixed routes beside a parameter)."""
    return "(?!(?:" + "|".join(re.escape(word) for word in words) + ")(?:/|$))[^/]+"


class DeadLetterSegment(Convertor[str]):
    """``{message_id:dead_letter}``: every fixed route beside ``/dead-letters/{message_id}``
    belongs in this list."""

    regex = segment_except("redrive")

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


# Starlette's convertors are one registry per process: registered before the routes are declared
register_url_convertor("dead_letter", DeadLetterSegment())
