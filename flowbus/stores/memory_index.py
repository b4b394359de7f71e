"""Ids by key for the memory backend: what an index on ``(key, id)`` finds in the SQL backends."""

from __future__ import annotations


class IdIndex:
    """The ids filed under each key, in the order they were added.

    Most keys hold one id (a message runs once, an event is handled by one run a handler), so a
    key's first id is kept bare in a dict of strings, and only the later ones in a list. A dict
    holding nothing but strings is not tracked by the cycle collector: a store of a million runs
    then adds no objects for its collections to walk, where a list a key would add one each.
    """

    __slots__ = ("_first", "_later")

    def __init__(self) -> None:
        self._first: dict[str, str] = {}
        self._later: dict[str, list[str]] = {}

    def add(self, key: str, id_: str) -> None:
        if key in self._first:
            self._later.setdefault(key, []).append(id_)
        else:
            self._first[key] = id_

    def get(self, key: str) -> list[str]:
        first = self._first.get(key)
        if first is None:
            return []
        later = self._later.get(key)
        return [first, *later] if later else [first]

    def replace(self, key: str, ids: list[str]) -> None:
        """File ``ids`` under ``key`` instead of what it held (none: the key is gone)."""
        self._later.pop(key, None)
        if not ids:
            self._first.pop(key, None)
            return
        self._first[key] = ids[0]
        if len(ids) > 1:
            self._later[key] = ids[1:]
