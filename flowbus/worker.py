"""The worker: claim queued messages in batches, run them, and acknowledge, retry or dead-letter.

A batch is committed together (group commit): each message's unit of work becomes one
changeset, applied atomically on its own but in one backend commit with the rest. Later runs
of a batch read the writes of earlier ones through an :class:`Overlay`, so the batch gives
the same results as committing message by message.

A message that fails is retried with backoff until its attempts are used up, then
dead-lettered with every attempt's error; one whose failure would certainly repeat (a chain
limit, values that do not match their declarations: ``FlowbusError.permanent``) is dead-lettered
on its first attempt. A run that is *rejected* (a validate rule) is not
retried: its message is done, its effects dropped, its trace kept. A source message that no
enabled trigger flow takes ends ``unmatched``, with a warning naming the nearest configured pairs.
Every finished run is logged at info. On stop (SIGTERM) the worker claims nothing more, finishes
the run in hand, gives back what it had not started, and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from flowbus.config.loader import load_config_text
from flowbus.errors import Deferred, FlowbusError, Rejected, StoreError, StoreUnavailable
from flowbus.foreground import Foreground
from flowbus.ids import new_id
from flowbus.metrics import PROCESS
from flowbus.queue import DEFAULT_LEASE_S, AttemptError, MessageState, QueuedMessage, QueueName
from flowbus.retention import Sweeper, SweepSettings
from flowbus.runtime.bounds import retried_attempt
from flowbus.runtime.changes import Ack, Changeset, Conflict, Retry
from flowbus.runtime.records import Run, RunStatus
from flowbus.runtime.routing import Unmatched
from flowbus.runtime.runner import Runner
from flowbus.runtime.unit_of_work import Overlay, UnitOfWork
from flowbus.schedules import keep_schedules
from flowbus.stores.backoff import Backoff
from flowbus.stores.protocols import Backend, refused_for_earlier
from flowbus.telemetry import Tracing, tracing

logger = logging.getLogger("flowbus.worker")

#: attempts a message may lose to write conflicts before it is dead-lettered (a livelock guard)
CONFLICT_ATTEMPTS = 100
#: the longest a batch runs messages without letting the event loop's other tasks in (signals,
#: heartbeats, the API beside it in `flowbus run`)
YIELD_EVERY_S = 0.002


@dataclass(frozen=True, kw_only=True)
class WorkerSettings:
    batch_size: int = 64
    lease_s: float = DEFAULT_LEASE_S
    #: the longest sleep between claims when the queues are empty
    idle_poll_s: float = 0.2
    #: how often to look for a newly published config version
    version_check_s: float = 1.0
    queues: tuple[QueueName, ...] = (QueueName.INBOUND, QueueName.OUTBOUND)
    #: False: a failure dead-letters at once (what `drain()` in tests and `flowbus try` want to see)
    retry_failures: bool = True
    #: fire the config's schedules beside the claims (flowbus.schedules)
    schedules: bool = True
    #: how :meth:`Worker.run` sweeps records past their retention (None: it does not)
    sweep: SweepSettings | None = SweepSettings()  # noqa: RUF009 - frozen: one instance shared safely


class WorkSource(Protocol):
    """What a worker works through: the store, and the runner of the config version in force
    (an :class:`~flowbus.engine.Engine` is one). A version switch replaces the runner."""

    backend: Backend
    runner: Runner


class Worker:
    def __init__(
        self,
        engine: WorkSource,
        settings: WorkerSettings | None = None,
        *,
        follow_versions: bool = False,
        clock: Callable[[], float] = time.monotonic,
        foreground: Foreground | None = None,
    ) -> None:
        self.engine = engine
        #: the store the worker claims from and commits to (the engine's, which a swap keeps)
        self.backend: Backend = engine.backend
        self.settings = settings or WorkerSettings()
        self.follow_versions = follow_versions
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{new_id()[-8:]}"
        self._clock = clock
        self._checked_version_at = float("-inf")
        self._stopping = asyncio.Event()
        self._in_hand: list[QueuedMessage] = []
        self.processed = 0
        #: paces the retries while the store is away
        self._outage = Backoff()
        self._outage_since = 0.0
        #: the requests of an API sharing this event loop (`flowbus run`), answered before each slice
        self.foreground = foreground
        self._slice_started = time.perf_counter()

    def stop(self) -> None:
        """Claim nothing more; the current run finishes, the rest of the batch is given back."""
        self._stopping.set()

    # -- loops ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Work until :meth:`stop` is called."""
        logger.info("worker started", extra={"owner": self.owner, "config_version": self.engine.runner.config_version})
        idle_s = 0.0
        heartbeat = asyncio.create_task(self._heartbeat())
        schedules = asyncio.create_task(self._keep_schedules()) if self.settings.schedules else None
        sweeping = asyncio.create_task(self._sweep(self.settings.sweep)) if self.settings.sweep else None
        try:
            while not self._stopping.is_set():
                try:
                    await self._follow_version()
                    batch = await self._claim()
                    self._store_answers()
                    if batch:
                        idle_s = 0.0
                        await self._process_batch(batch)
                        continue
                    idle_s = min(self.settings.idle_poll_s, max(idle_s * 2, 0.005))
                    if await self._idle(idle_s) == "version":
                        self._checked_version_at = float("-inf")
                except StoreError as exc:  # claims and version checks: waited out whatever the cause
                    await self._wait_out_store(exc)
        finally:
            for task in (heartbeat, schedules, sweeping):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            await self.engine.runner.http_clients.close()
        logger.info("worker stopped", extra={"owner": self.owner, "processed": self.processed})

    async def _idle(self, timeout_s: float) -> str | None:
        """Wait for new work: a backend with notifications returns at once, others after the timeout.

        The wait is short (``idle_poll_s`` at most) and never cancelled, so a stop is noticed
        within that time and no driver is interrupted mid-wait.
        """
        if self._stopping.is_set():
            return None
        return await self.backend.wait_for_work(timeout_s)

    async def _wait_out_store(self, exc: StoreError) -> None:
        """The database is away (a restart, a failover, a dropped connection): give back what was
        in hand and wait, longer each time, for as long as it takes. Nothing is charged to the
        messages: whatever was not committed runs again as the same attempt. Said once an outage."""
        if not self._outage.failures:
            self._outage_since = self._clock()
            logger.error("the store is unavailable; retrying until it answers", extra={"error": exc.message})
        else:
            logger.debug("the store is still unavailable", extra={"error": exc.message})
        delay = self._outage.failed()
        in_hand, self._in_hand = self._in_hand, []
        if in_hand:
            with contextlib.suppress(StoreError):  # else their leases run out
                await self.backend.release([m.id for m in in_hand], owner=self.owner)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)

    def _store_answers(self) -> None:
        if self._outage.failures:
            unavailable_s = round(self._clock() - self._outage_since, 3)
            logger.warning("the store answers again", extra={"unavailable_s": unavailable_s})
            self._outage.succeeded()

    async def run_until_idle(self, *, max_messages: int | None = None) -> list[Run]:
        """Work until no message is deliverable now (messages waiting for a retry stay queued)."""
        runs: list[Run] = []
        while max_messages is None or self.processed < max_messages:
            await self._follow_version()
            batch = await self._claim(max_messages)
            if not batch:
                break
            runs.extend(await self._process_batch(batch))
        return runs

    # -- one batch -----------------------------------------------------------------------

    async def _claim(self, max_messages: int | None = None) -> list[QueuedMessage]:
        limit = self.settings.batch_size
        if max_messages is not None:
            limit = min(limit, max_messages - self.processed)
        self._slice_started = time.perf_counter()  # an idle wait before it is no slice of work
        return await self.backend.claim(
            self.settings.queues, limit=limit, owner=self.owner, lease_s=self.settings.lease_s
        )

    async def _process_batch(self, batch: list[QueuedMessage]) -> list[Run]:
        traces = tracing()
        if traces is not None:
            batch = traces.queue_waits(batch)
        self._in_hand = list(batch)
        await self.engine.runner.read_events_of(batch)
        overlay = Overlay()
        changesets: list[Changeset] = []
        handled: list[tuple[QueuedMessage, list[Run], Unmatched | None]] = []
        clock = time.perf_counter
        yield_at = float("-inf")
        for message in batch:
            # every store call of SQLite returns without suspending, so without this a backlog
            # would hold the event loop for good: no signal, heartbeat or API request got through.
            # Yielding costs a trip round the loop, more than a short run: so once a slice of time
            # (and before the first message), not once a message
            if clock() >= yield_at:
                await self._give_way()
                yield_at = clock() + YIELD_EVERY_S
            if self._stopping.is_set():
                break
            unmatched = self.engine.runner.unmatched(message)
            if unmatched is None:
                changeset, message_runs = await self._process(message, overlay)
            else:  # nothing to run: finished, as unmatched so that it shows (and reported once committed)
                changeset, message_runs = Changeset(acks=[Ack(message.id, self.owner, MessageState.UNMATCHED)]), []
            changesets.append(changeset)
            handled.append((message, message_runs, unmatched))
        applying = self._apply(changesets, [message for message, _, _ in handled])
        if traces is not None:
            applying = traces.commit(applying, [r.id for _, runs, _ in handled for r in runs], len(changesets))
        results = await applying
        await self._give_way()  # the commit of a batch and the claim of the next are long enough apart
        # looked up once a batch: building a run's log fields costs more than the check
        log_runs = logger.isEnabledFor(logging.INFO)
        for (message, message_runs, unmatched), changeset, conflict in zip(handled, changesets, results, strict=True):
            if conflict is not None:
                # its runs are kept as failed by the conflict, and logged when the retry finishes
                await self._retry_after_conflict(message, conflict, changeset.runs)
                continue
            if log_runs:
                for run in message_runs:
                    logger.info("run finished", extra=_run_fields(run, traces))
            if unmatched is not None:
                self._report_unmatched(message, unmatched)
        unstarted = [m.id for m in batch[len(handled) :]]
        if unstarted:
            await self.backend.release(unstarted, owner=self.owner)
        self._in_hand = []
        self.processed += len(handled)
        project = self.backend.project
        runs = [run for _, message_runs, _ in handled for run in message_runs]
        # a metric's labelled child looked up once a batch, not once a run
        seconds = PROCESS.run_seconds.labels(project)
        by_flow: dict[str, Any] = {}
        by_status: dict[RunStatus, int] = {}
        for run in runs:
            seconds.observe(run.duration_s)
            flow_seconds = by_flow.get(run.flow)
            if flow_seconds is None:
                flow_seconds = by_flow[run.flow] = PROCESS.flow_run_seconds.labels(project, run.flow)
            flow_seconds.observe(run.duration_s)
            by_status[run.status] = by_status.get(run.status, 0) + 1
        for status, count in by_status.items():
            PROCESS.runs.labels(project, status.value).inc(count)
        return runs

    async def _give_way(self) -> None:
        """A turn of the event loop for its other tasks; beside an API (a foreground), a wait while it
        has requests in hand, no longer than the slice of work just done."""
        if self.foreground is None:
            await asyncio.sleep(0)
        else:
            await self.foreground.give_way(time.perf_counter() - self._slice_started)
        self._slice_started = time.perf_counter()

    def _report_unmatched(self, message: QueuedMessage, unmatched: Unmatched) -> None:
        """A warning and a count for a source message no flow took (committed as ``unmatched``)."""
        PROCESS.messages_unmatched.labels(self.backend.project, unmatched.source).inc()
        logger.warning(
            f"message {unmatched.describe()}",
            extra={
                "message_id": message.id, "source": unmatched.source, "event_type": unmatched.event_type,
                "config_version": self.engine.runner.config_version,
            },
        )  # fmt: skip

    async def _apply(self, changesets: list[Changeset], messages: list[QueuedMessage]) -> list[Conflict | None]:
        """Commit a batch's changesets together. When the store refuses the batch for what one of
        them holds (not an outage), each is committed alone, and the one refused is charged as a
        failed attempt: otherwise the same batch would be claimed, run and refused for ever."""
        if not changesets:
            return []
        try:
            return await self.backend.apply_many(changesets)
        except StoreUnavailable:
            raise
        except StoreError:
            pass
        results: list[Conflict | None] = []
        refused: set[int] = set()
        for message, changeset in zip(messages, changesets, strict=True):
            conflict = refused_for_earlier(changeset, refused)
            if conflict is None:
                try:
                    [conflict] = await self.backend.apply_many([changeset])
                except StoreUnavailable:
                    raise
                except StoreError as exc:
                    await self._charge_refused(message, changeset.runs, exc)
                    refused.add(id(changeset))
            if conflict is not None:
                refused.add(id(changeset))
            results.append(conflict)
        return results

    async def _charge_refused(self, message: QueuedMessage, runs: list[Run], exc: StoreError) -> None:
        """A failed attempt for a message whose writes the store refused; kept with its runs when
        the store takes them, else without (they may be what it refused)."""
        error = f"the store refused the run's writes: {exc.message}"
        for kept in (runs, []):
            try:
                await self.backend.apply(self._failure(message, kept, error))
            except Conflict:  # the lease is gone: whoever holds it now runs it
                return
            except StoreUnavailable:
                raise
            except StoreError:
                continue
            return

    async def _process(self, message: QueuedMessage, overlay: Overlay) -> tuple[Changeset, list[Run]]:
        uow = UnitOfWork(self.backend, overlay=overlay)
        uow.ack(message.id, self.owner)
        try:
            runs = await self.engine.runner.process(message, uow)
        except Rejected as exc:
            # a sync handler refused the event: done, not retried; its effects dropped
            logger.info("message rejected", extra={"message_id": message.id, "error": exc.message})
            return _done_without_effects(uow), list(uow.runs)
        except StoreUnavailable:
            raise  # the store is away: not the message's failure, and no attempt is charged for it
        except Deferred as exc:
            return self._deferral(message, list(uow.runs), exc), list(uow.runs)
        except FlowbusError as exc:
            permanent = exc.permanent or uow.permanent
            return self._failure(message, list(uow.runs), exc.message, permanent=permanent), list(uow.runs)
        failed = next((r for r in runs if not r.succeeded), None)
        if failed is None:
            overlay.absorb(uow.changeset, uow.read_versions)
            return uow.changeset, runs
        if all(r.status is not RunStatus.FAILED for r in runs):
            # rejected: the input was refused; trying again would refuse it again
            logger.info("message rejected", extra={"message_id": message.id, "error": failed.error})
            return _done_without_effects(uow), runs
        error = f"{failed.flow}: {failed.error}"
        return self._failure(message, list(uow.runs), error, permanent=uow.permanent), runs

    def _failure(
        self, message: QueuedMessage, runs: list[Run], error: str, *, conflict: bool = False, permanent: bool = False
    ) -> Changeset:
        policy = self.engine.runner.retry_policy(message)
        attempt = message.attempts + 1
        now = dt.datetime.now(dt.UTC)
        if conflict:
            # a conflict says nothing about the message, only that another writer won this round:
            # retried soon (even where failures are not), and dead only if it never gets through
            dead = attempt >= CONFLICT_ATTEMPTS
            delay = random.uniform(0, min(1.0, 0.01 * 2 ** min(attempt, 7)))
        else:
            # a permanent failure (a chain limit, values that do not validate) would only repeat
            dead = permanent or attempt >= policy.max_attempts or not self.settings.retry_failures
            delay = 0.0 if dead else policy.delay_s(attempt)
        record = AttemptError(attempt, error, now, self.engine.runner.config_version)
        log = logger.warning if dead else (logger.debug if conflict else logger.info)
        fields = {"message_id": message.id, "attempt": attempt, "error": error, "retry_in_s": round(delay, 3)}
        if permanent:
            fields["permanent"] = True
        log("message dead-lettered" if dead else "message will be retried", extra=fields)
        if not dead:
            # the retry runs these steps again: only the last attempt keeps its whole journal
            runs = [retried_attempt(run) for run in runs]
        retry = Retry(
            message.id,
            self.owner,
            record,
            now + dt.timedelta(seconds=delay),
            dead=dead,
            blocking=dead and policy.on_failure == "block",
        )
        return Changeset(runs=runs, retries=[retry])

    def _deferral(self, message: QueuedMessage, runs: list[Run], deferred: Deferred) -> Changeset:
        """Give the message back until ``deferred.until`` without spending an attempt (``throttled``).

        Its effects are dropped, as a failure's are; its runs are kept in the trace as throttled.
        """
        now = dt.datetime.now(dt.UTC)
        logger.info(
            "message throttled",
            extra={"message_id": message.id, "reason": deferred.message, "until": deferred.until.isoformat()},
        )
        PROCESS.deferrals.labels(self.backend.project, deferred.target).inc()
        kept = [
            retried_attempt(run._replace(status=RunStatus.THROTTLED, error=run.error or deferred.message))
            for run in runs
        ]
        record = AttemptError(message.attempts, deferred.message, now, self.engine.runner.config_version)
        retry = Retry(
            message.id, self.owner, record, max(deferred.until, now), deferred=True, counted=int(deferred.counted)
        )
        return Changeset(runs=kept, retries=[retry])

    async def _retry_after_conflict(self, message: QueuedMessage, conflict: Conflict, runs: list[Run]) -> None:
        """Another writer changed what this run read: run it again soon, as a new attempt.

        The runs of the attempt are kept in the trace, marked failed by the conflict.
        """
        logger.debug("write conflict; retrying", extra={"message_id": message.id, "error": conflict.message})
        error = f"write conflict: {conflict.message}"
        lost = [run._replace(status=RunStatus.FAILED, error=error) for run in runs]
        changeset = self._failure(message, lost, error, conflict=True)
        with contextlib.suppress(Conflict):  # the lease is gone: whoever holds it now will run it
            await self.backend.apply(changeset)

    # -- leases and versions -------------------------------------------------------------

    async def _heartbeat(self) -> None:
        """Extend the leases of the batch in hand, so that a long batch is not taken over."""
        while True:
            await asyncio.sleep(self.settings.lease_s / 3)
            if self._in_hand:
                # a store outage is met, and said, by the loop: the heartbeat lives through it
                with contextlib.suppress(StoreError):
                    await self.backend.extend_leases(
                        [m.id for m in self._in_hand], owner=self.owner, lease_s=self.settings.lease_s
                    )

    async def _keep_schedules(self) -> None:
        """Fire the schedules of the config version in force (each tick once across workers)."""
        runner = lambda: (self.engine.runner.plan, self.engine.runner.config_version)  # noqa: E731
        await keep_schedules(self.backend, runner, self._stopping)

    async def _sweep(self, settings: SweepSettings) -> None:
        """Remove what is past the retention of the config in force, a bounded amount a tick."""
        sweeper = Sweeper(
            self.backend, lambda: self.engine.runner.plan.config.retention, owner=self.owner, settings=settings
        )
        while True:
            await asyncio.sleep(settings.every_s)
            try:
                await sweeper.tick()
            except StoreError as exc:  # tried again next tick; the claim loop meets an outage itself
                logger.warning("retention sweep failed", extra={"error": exc.message})
            except Exception:  # a conflict, or a bug: retention must not stop for good over one tick
                logger.exception("retention sweep failed")

    async def _follow_version(self) -> None:
        if not self.follow_versions:
            return
        now = self._clock()
        if now - self._checked_version_at < self.settings.version_check_s:
            return
        self._checked_version_at = now
        backend = self.backend
        # the dispatcher runs here too: a publisher that died after storing its version is caught up
        await backend.project_versions()
        active = await backend.active_version()
        if active is None or active == self.engine.runner.config_version:
            return
        version = await backend.get_version(active)
        if version is None:
            return
        old = self.engine.runner
        # a new runner over the same store and actions: the engine in hand is kept
        self.engine.runner = old.switched(load_config_text(version.text, file=version.file).plan, active)
        logger.info("switched config version", extra={"from": old.config_version, "to": active})


def _run_fields(run: Run, traces: Tracing | None) -> dict[str, Any]:
    """The fields of a run's log line (the handler only for a handler's run, the error only when failed,
    the ids of its trace and span when it made one)."""
    fields: dict[str, Any] = {"flow": run.flow}
    if run.handler is not None:
        fields["handler"] = run.handler
    fields.update(
        status=run.status.value, duration_ms=round(run.duration_s * 1000, 3), message_id=run.message_id,
        config_version=run.config_version,
    )  # fmt: skip
    if run.error is not None:
        fields["error"] = run.error
    if traces is not None:
        fields.update(traces.log_ids(run.id))
    return fields


def _done_without_effects(uow: UnitOfWork) -> Changeset:
    """A refused message: acknowledged, its runs kept for the trace, everything else dropped."""
    return Changeset(runs=list(uow.runs), acks=list(uow.changeset.acks))
