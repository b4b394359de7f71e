"""What the HTTP API keeps between requests: one backend per project, the compiled plan of its
active config version, its ingress batcher, and the API key records it read last.

The API shapes messages and queues them; workers run them. So it holds a plan and a queue per
project (:mod:`flowbus.runtime.inbound` shapes a message from a plan), never an engine."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from flowbus.api.batching import SendBatcher
from flowbus.api.errors import ApiError
from flowbus.config.plan import Plan
from flowbus.keys import ApiKey
from flowbus.publishing import active_config, no_config
from flowbus.stores import open_backend
from flowbus.stores.protocols import Backend

#: how long a plan is used before the active config version is looked up again
PLAN_TTL_S = 1.0
#: how long a key record read from the store is used again (the secret is still checked on every
#: request): a revoked key stops working within this time on every server
KEY_TTL_S = 1.0
#: the most key records kept; past it, the cache starts again empty
MAX_CACHED_KEYS = 10_000
#: the project whose backend answers questions about every project (readiness, keys by id)
DEFAULT_PROJECT = "default"


@dataclass(frozen=True, slots=True)
class ActivePlan:
    """A project's active config version, compiled: what its messages are checked against."""

    plan: Plan
    #: the version number, which the messages shaped from ``plan`` carry
    version: int


@dataclass
class ApiState:
    db: str
    max_body_bytes: int = 256 * 1024
    _backends: dict[str, Backend] = field(default_factory=dict)
    _plans: dict[str, tuple[float, ActivePlan]] = field(default_factory=dict)
    _senders: dict[str, SendBatcher] = field(default_factory=dict)
    _keys: dict[tuple[str, str], tuple[float, ApiKey]] = field(default_factory=dict)

    def backend(self, project: str) -> Backend:
        backend = self._backends.get(project)
        if backend is None:
            backend = self._backends[project] = open_backend(self.db, project)
        return backend

    def sender(self, project: str) -> SendBatcher:
        """Where the ingress queues the project's messages: a group commit over its backend."""
        sender = self._senders.get(project)
        if sender is None:
            sender = self._senders[project] = SendBatcher(self.backend(project))
        return sender

    async def key(self, project: str, key_id: str) -> ApiKey | None:
        """The project's key record ``key_id``: read again from the store after :data:`KEY_TTL_S`
        (a store round trip saved on nearly every request). Absent keys are not cached."""
        now = time.monotonic()
        cached = self._keys.get((project, key_id))
        if cached is not None and now - cached[0] < KEY_TTL_S:
            return cached[1]
        if project not in self._backends:
            # a project this process has not opened yet is opened for one of its own keys only
            # (the SQL stores find a key in any project), so that requests or cookies naming
            # made-up projects open no database connection and fill no cache
            found = await self.backend(DEFAULT_PROJECT).find_key(key_id)
            if found is None or found.project != project:
                return None
        key = await self.backend(project).get_key(key_id)
        if key is not None:
            if len(self._keys) >= MAX_CACHED_KEYS:
                self._keys.clear()
            self._keys[(project, key_id)] = (now, key)
        return key

    def backends(self) -> dict[str, Backend]:
        """The backends opened so far, by project."""
        return dict(self._backends)

    async def active(self, project: str) -> ActivePlan:
        """The plan of the project's active config version (looked up again every second); a 409
        when the project has none."""
        cached = self._plans.get(project)
        now = time.monotonic()
        if cached is not None and now - cached[0] < PLAN_TTL_S:
            return cached[1]
        backend = self.backend(project)
        number = await backend.active_version()
        if cached is not None and number == cached[1].version:
            self._plans[project] = (now, cached[1])
            return cached[1]
        found = await active_config(backend)
        if found is None:
            raise ApiError(409, no_config(project))
        number, loaded = found
        active = ActivePlan(loaded.plan, number)
        self._plans[project] = (now, active)
        return active

    async def close(self) -> None:
        for backend in self._backends.values():
            await backend.close()
        self._backends.clear()
        self._plans.clear()
        self._senders.clear()
        self._keys.clear()
