"""The unit of work every run writes into, whatever the backend.

Reads go to committed state (or to an :class:`Overlay` of earlier runs of the same batch) and
remember the version they saw; writes stay in the unit of work's :class:`Changeset` until
``commit`` hands it to the backend, which applies it atomically and checks those versions.
No database transaction is held open while a flow runs, so a slow step never blocks others.
"""

from __future__ import annotations

from collections.abc import Sequence

from flowbus.events.frozen import freeze
from flowbus.events.instance import EventInstance
from flowbus.queue import MessageState, OutgoingMessage
from flowbus.runtime.changes import Ack, Changeset, EntityWrite, Record, RunStore, Versioned, caused_events
from flowbus.runtime.records import Run

#: the version of a record written without reading it first: whatever the store makes it
UNKNOWN_VERSION = -1


class Overlay:
    """Writes of a batch's earlier runs, applied together with this one at the batch's commit.

    A later run of the batch reads them as committed (with the version they will have), so a
    batch gives the same results as committing run by run, in one commit. A run that read such a
    write depends on it: its changeset lists the writer in ``after``, and the backend refuses it
    when the writer was refused (a version number alone cannot tell: another worker's write may
    have reached the same number).
    """

    def __init__(self) -> None:
        self._records: dict[tuple[str, str], tuple[Versioned | None, Changeset]] = {}
        #: events the batch's earlier runs caused, by root: counted against the chain's bound too
        self.caused: dict[str, int] = {}

    def get(self, entity: str, key: str) -> tuple[Versioned | None, Changeset] | None:
        """The pending record (None: deleted) and the changeset that wrote it; None when not written."""
        return self._records.get((entity, key))

    def absorb(self, changeset: Changeset, versions: dict[tuple[str, str], int]) -> None:
        if changeset.events:
            for correlation_id, n in caused_events(changeset.events).items():
                self.caused[correlation_id] = self.caused.get(correlation_id, 0) + n
        for address, write in changeset.writes.items():
            if write.record is None:
                self._records[address] = (None, changeset)
            else:
                # a write after a read lands on the next version; a blind write's is not known here
                version = versions[address] + 1 if address in versions else UNKNOWN_VERSION
                self._records[address] = (Versioned(write.record, version), changeset)


class UnitOfWork:
    """Collects one run's changes; nothing is visible to others before :meth:`commit`."""

    __slots__ = ("_backend", "_caused", "_done", "_overlay", "_versions", "changeset", "permanent")

    def __init__(self, backend: RunStore, *, overlay: Overlay | None = None) -> None:
        self._backend = backend
        self._overlay = overlay
        self._versions: dict[tuple[str, str], int] = {}
        #: events caused so far by each root this unit of work publishes for (committed and its own)
        self._caused: dict[str, int] = {}
        self._done = False
        self.changeset = Changeset()
        #: True once a run in it failed in a way every attempt would repeat (a chain limit, values
        #: that do not match their declarations): its message is dead-lettered, not retried
        self.permanent = False

    # -- entities (the view step actions use) ----------------------------------------------

    @property
    def entities(self) -> UnitOfWork:
        return self

    async def get(self, entity: str, key: str) -> Record | None:
        address = (entity, key)
        write = self.changeset.writes.get(address)
        if write is not None:
            return write.record
        current = await self._read(entity, key)
        if address not in self._versions and (current is None or current.version != UNKNOWN_VERSION):
            self._versions[address] = current.version if current is not None else 0
        return current.record if current is not None else None

    async def put(self, entity: str, key: str, record: Record) -> None:
        address = (entity, key)
        self.changeset.writes[address] = EntityWrite(freeze(record), self._versions.get(address))

    async def delete(self, entity: str, key: str) -> bool:
        existed = await self.get(entity, key) is not None
        self.changeset.writes[(entity, key)] = EntityWrite(None, self._versions.get((entity, key)))
        return existed

    async def _read(self, entity: str, key: str) -> Versioned | None:
        if self._overlay is not None:
            pending = self._overlay.get(entity, key)
            if pending is not None:
                value, writer = pending
                if not any(writer is earlier for earlier in self.changeset.after):
                    self.changeset.after.append(writer)
                return value
        return await self._backend.read_entity(entity, key)

    # -- everything else a run produces ----------------------------------------------------

    async def caused(self, correlation_id: str, *, stored: bool) -> int:
        """Events the root ``correlation_id`` has caused, with those of this unit of work and of
        its batch's earlier runs. ``stored``: the chain may have committed events already (it
        began in an earlier unit of work), read once."""
        known = self._caused.get(correlation_id)
        if known is None:
            known = await self._backend.chain_events(correlation_id) if stored else 0
            if self._overlay is not None:
                known += self._overlay.caused.get(correlation_id, 0)
            self._caused[correlation_id] = known
        return known

    def add_event(self, instance: EventInstance) -> None:
        self.changeset.events.append(instance)
        if instance.depth and instance.correlation_id in self._caused:
            self._caused[instance.correlation_id] += 1

    def enqueue(self, message: OutgoingMessage) -> None:
        self.changeset.messages.append(message)

    def add_run(self, run: Run) -> None:
        self.changeset.runs.append(run)

    def ack(self, message_id: str, owner: str, state: MessageState = MessageState.DONE) -> None:
        self.changeset.acks.append(Ack(message_id, owner, state))

    @property
    def runs(self) -> Sequence[Run]:
        return self.changeset.runs

    @property
    def read_versions(self) -> dict[tuple[str, str], int]:
        return self._versions

    # -- the end -------------------------------------------------------------------------

    async def commit(self) -> None:
        """Apply everything atomically; raises :class:`~flowbus.runtime.changes.Conflict`."""
        self._finish()
        await self._backend.apply(self.changeset)

    async def rollback(self) -> None:
        """Drop every change; keep the trace of the runs that were attempted."""
        self._finish()
        if self.changeset.runs:
            await self._backend.record_runs(self.changeset.runs)

    def _finish(self) -> None:
        if self._done:
            raise RuntimeError("this unit of work has already been committed or rolled back")
        self._done = True
