"""The event definitions of a config by name and version: which version is the latest, and what
to call one.

An event is identified by its name and its version, so that a new version of a contract can live
beside the old one while handlers move over. A name with one definition is called by its name
alone, exactly as before versions could sit side by side.
"""

from __future__ import annotations

from collections.abc import Iterable

from flowbus.config.model import EventDefinition


class EventVersions:
    def __init__(self, events: Iterable[EventDefinition]) -> None:
        #: (name, version) -> definition; the first wins when one is defined twice (an error)
        self.by_key: dict[tuple[str, int], EventDefinition] = {}
        #: name -> its highest version
        self.latest: dict[str, EventDefinition] = {}
        self._versions: dict[str, list[int]] = {}
        for event in events:
            self.by_key.setdefault((event.name, event.version), event)
            self._versions.setdefault(event.name, []).append(event.version)
            latest = self.latest.get(event.name)
            if latest is None or event.version > latest.version:
                self.latest[event.name] = event

    def versions(self, name: str) -> list[int]:
        return sorted(set(self._versions.get(name, ())))

    def resolve(self, name: str, version: int | None) -> EventDefinition | None:
        """The definition a subscriber or publisher of ``name`` means: ``version``, or the latest."""
        if version is None:
            return self.latest.get(name)
        return self.by_key.get((name, version))

    def several(self, name: str) -> bool:
        return len(set(self._versions.get(name, ()))) > 1

    def label(self, event: EventDefinition) -> str:
        """``OrderPlaced`` for an event with one definition, ``OrderPlaced v2`` among several."""
        return f"{event.name} v{event.version}" if self.several(event.name) else event.name

    def missing_version(self, name: str, version: int) -> str:
        """Why ``version`` of the defined event ``name`` does not resolve."""
        defined = ", ".join(str(v) for v in self.versions(name))
        return f"event {name!r} has no version {version}; defined: {defined}"
