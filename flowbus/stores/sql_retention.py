"""Retention over SQL: the :class:`~flowbus.stores.protocols.RetentionStore` part of the SQL
backend, each operation one short transaction over a named query of ``sql/<dialect>/queries.sql``.

Events and runs go by their ids, which order by the time they were made (a range of the primary
key); messages by their sequence number, on the indexes of finished and of dead messages. The
step runs of a run are replaced by one marker, in id order, behind a mark kept in the project's
row of ``retention_sweeps``, so that no run is read twice.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from flowbus.codec import decode, encode
from flowbus.ids import floor_id, time_of
from flowbus.runtime.bounds import expired_steps
from flowbus.runtime.records import StepRun, StepStatus
from flowbus.stores.protocols import Kept, RetentionKind

#: the parameters of a named query
_Params = dict[str, Any]

#: the kinds removed by a range of ids (their ids order by the time they were made)
_BY_ID = (RetentionKind.EVENTS, RetentionKind.RUNS)


class _Transaction(Protocol):
    """The part of the SQL backend's transaction that retention uses."""

    async def execute(self, query: str, params: _Params) -> int: ...

    async def execute_many(self, query: str, params: Sequence[_Params]) -> int: ...

    async def fetch_one(self, query: str, params: _Params) -> Any: ...

    async def fetch_all(self, query: str, params: _Params) -> Sequence[Any]: ...


class _Connector(Protocol):
    """The part of the SQL backend's connector that retention uses."""

    def stamp(self, value: dt.datetime) -> Any: ...

    def transaction(self) -> AbstractAsyncContextManager[_Transaction]: ...

    async def fetch_all(self, query: str, params: _Params) -> Sequence[Any]: ...

    async def reclaim_space(self) -> None: ...


class SqlRetention:
    """Mixed into :class:`~flowbus.stores.sql_backend.SqlBackend`, whose connector and project it uses."""

    connector: _Connector
    project: str

    async def purge(self, kind: RetentionKind, before: dt.datetime, *, limit: int) -> int:
        params: dict[str, Any] = {"project": self.project, "limit": limit}
        async with self.connector.transaction() as tx:
            if kind in _BY_ID:
                return int(await tx.execute(f"purge_{kind}", {**params, "below": floor_id(before)}))
            if kind is not RetentionKind.STEPS:  # messages: their expired de-duplication entries too
                params.update(before=self.connector.stamp(before), before_s=before.timestamp(), now=time.time())
                await tx.execute(f"forget_dedup_of_{kind}", params)
                return int(await tx.execute(f"purge_{kind}", params))
            mark = await tx.fetch_one("steps_through", {"project": self.project})
            after = mark["steps_through"] if mark is not None else ""
            found = await tx.fetch_all("runs_with_steps", {**params, "after": after, "below": floor_id(before)})
            if not found:
                return 0
            changed = [
                {"project": self.project, "id": row["id"], "steps": encode(expired_steps(_step_runs(row["steps"])))}
                for row in found
            ]
            await tx.execute_many("expire_steps", changed)
            await tx.execute("mark_steps_through", {"project": self.project, "through": found[-1]["id"]})
            return len(found)

    async def purgeable(self, kind: RetentionKind, before: dt.datetime) -> int:
        if kind is RetentionKind.STEPS:
            mark = await self._fetch("steps_through", {})
            params: dict[str, Any] = {"after": mark[0]["steps_through"] if mark else "", "below": floor_id(before)}
        elif kind in _BY_ID:
            params = {"below": floor_id(before)}
        else:
            params = {"before": self.connector.stamp(before), "before_s": before.timestamp()}
        [row] = await self._fetch(f"purgeable_{kind}", params)
        return int(row["n"])

    async def kept(self) -> list[Kept]:
        found = []
        for row in await self._fetch("kept", {}):
            if row["oldest_id"] is not None:
                oldest: dt.datetime | None = time_of(row["oldest_id"])
            elif row["oldest"] is not None:
                stored = row["oldest"]
                oldest = stored if isinstance(stored, dt.datetime) else dt.datetime.fromisoformat(stored)
            else:
                oldest = None
            found.append(Kept(RetentionKind(row["kind"]), int(row["n"]), oldest))
        return found

    async def reclaim_space(self) -> None:
        await self.connector.reclaim_space()

    async def _fetch(self, query: str, params: dict[str, Any]) -> Any:
        return await self.connector.fetch_all(query, {"project": self.project, **params})

    async def take_sweep(self, owner: str, *, now: dt.datetime, lease_s: float) -> bool:
        at = now.timestamp()
        async with self.connector.transaction() as tx:
            params = {"project": self.project, "owner": owner, "now": at, "expires_at": at + lease_s}
            return bool(await tx.execute("take_sweep", params))


def _step_runs(text: str) -> list[StepRun]:
    """Enough of a run's stored step runs to count them (a marker's count read from its output)."""
    return [
        StepRun(key, step_id, action, StepStatus(status), None, out if status == StepStatus.CUT else None)
        for key, step_id, action, status, _inp, out, _error, _duration in decode(text)
    ]
