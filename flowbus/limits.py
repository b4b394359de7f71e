"""Flow control: concurrency limits, rate limits and priority of queued runs, per key.

A handler (or the flow it runs) may set ``concurrency: {limit, key}``, ``rate_limit: {limit,
period, key}`` and, a handler, ``priority``. Their key is an ``=`` expression over the event,
evaluated once, when the handler's message is queued (at publish); the message carries the key
and the limit (:class:`~flowbus.queue.OutgoingMessage`), so that the claim, in the store, needs
no config:

- **concurrency**: a claim skips a message whose key already has ``limit`` messages leased
  (unexpired). Counting leased messages means a slot is freed by an ack, a retry, a dead
  letter or a lease running out, with no bookkeeping of its own. A skipped message stays
  ready (shown ``waiting_for_slot``) and spends no attempt.
- **rate**: a generic cell rate algorithm without a burst: one message of a key is admitted
  every ``period / limit`` seconds at most, so any window of ``period`` holds at most ``limit``
  admissions. The theoretical arrival time of each key is kept in the store, moved in the
  claim's transaction. A message not admitted waits for its turn as a delayed message does
  (stored ``scheduled``, shown ``throttled``); it is not failed and spends no attempt.

Limits set on a flow are shared by every handler that runs it (one pool per flow and key);
limits set on a handler are its own. A key whose value is missing (null, absent, or an
expression that fails) puts the run in the one pool of runs without a key.

:func:`admit` is the decision every backend takes in its claim, on candidates already in the
claim's order; the SQL backends serialise it per key (SQLite: the write lock; PostgreSQL: an
advisory lock per key), the memory backend runs it in one step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple, Protocol

from flowbus.errors import FlowbusError
from flowbus.expr import NOTHING, ExpressionError, Limits, compile_expression
from flowbus.queue import DEFAULT_PRIORITY, OutgoingMessage

#: the variables a key expression may name: the event (``event.data``, ``event.type``...) and
#: its data
KEY_VARIABLES = frozenset({"event", "data"})
#: a key value longer than this is stored as its SHA-256
MAX_KEY_VALUE_CHARS = 200


class Setting(Protocol):
    """A ``concurrency`` or ``rate_limit`` of the config (flowbus.config.flow_control)."""

    @property
    def key(self) -> str | None: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class KeyedLimit:
    """One limit of one pool owner (``handler:name`` or ``flow:name``), with its compiled key."""

    owner: str
    key: Any  # the compiled expression's evaluate, or None: one pool
    #: concurrency: runs at once; rate: seconds between admissions
    amount: float

    def key_of(self, scope: Mapping[str, Any]) -> str:
        """The stored key of a run in ``scope``: the owner, and the key's value when it has one."""
        if self.key is None:
            return self.owner
        try:
            value = self.key(scope)
        except (ExpressionError, FlowbusError):
            return self.owner  # documented: a failing key shares the pool of runs without a key
        text = _key_text(value)
        return self.owner if text is None else f"{self.owner}={text}"


@dataclass(frozen=True, kw_only=True, slots=True)
class FlowControl:
    """What a handler's messages carry: their concurrency and rate limits, and their priority."""

    concurrency: KeyedLimit | None = None
    rate: KeyedLimit | None = None
    priority: int = DEFAULT_PRIORITY

    def stamp(self, message: OutgoingMessage, scope: Mapping[str, Any]) -> OutgoingMessage:
        """``message`` with its keys, limits and priority."""
        fields: dict[str, Any] = {}
        if self.concurrency is not None:
            fields["concurrency_key"] = self.concurrency.key_of(scope)
            fields["concurrency_limit"] = int(self.concurrency.amount)
        if self.rate is not None:
            fields["rate_key"] = self.rate.key_of(scope)
            fields["rate_interval_s"] = self.rate.amount
        if self.priority != DEFAULT_PRIORITY:
            fields["priority"] = self.priority
        return message._replace(**fields) if fields else message


def flow_control(
    handler: str,
    flow: str,
    *,
    concurrency: tuple[Any, Any],
    rate: tuple[Any, Any],
    priority: int,
    limits: Limits,
) -> FlowControl | None:
    """The flow control of a handler from its own settings and its flow's (each pair: the
    handler's, the flow's); None when it has none. Raises :class:`ExpressionError` for a key
    that does not compile."""
    concurrency_limit = _keyed(handler, flow, *concurrency, limits, lambda c: c.limit)
    rate_limit = _keyed(handler, flow, *rate, limits, lambda r: r.interval_s)
    if concurrency_limit is None and rate_limit is None and priority == DEFAULT_PRIORITY:
        return None
    return FlowControl(concurrency=concurrency_limit, rate=rate_limit, priority=priority)


def _keyed(
    handler: str, flow: str, own: Setting | None, flows: Setting | None, limits: Limits, amount: Any
) -> KeyedLimit | None:
    setting, owner = (own, f"handler:{handler}") if own is not None else (flows, f"flow:{flow}")
    if setting is None:
        return None
    key = None
    if setting.key is not None:
        key = compile_expression(setting.key[1:], limits=limits, variables=KEY_VARIABLES).evaluate
    return KeyedLimit(owner=owner, key=key, amount=amount(setting))


def compile_key(source: str, limits: Limits) -> None:
    """Compile a key expression only to check it; raises :class:`ExpressionError`."""
    compile_expression(source[1:], limits=limits, variables=KEY_VARIABLES)


def _key_text(value: Any) -> str | None:
    if value is None or value is NOTHING:
        return None
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str | int | Decimal):
        text = str(value)
    else:
        text = repr(value)
    return bounded_key(text)


def bounded_key(text: str) -> str:
    """``text``, or its digest past :data:`MAX_KEY_VALUE_CHARS` characters: a key stays short
    whatever the event holds (flow control's keys and debounce's bursts alike)."""
    if len(text) > MAX_KEY_VALUE_CHARS:
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    return text


# -- the claim's decision ---------------------------------------------------------------------


class Candidate(NamedTuple):
    """A deliverable message a claim found, with its limits (the columns of its row)."""

    seq: int
    concurrency_key: str | None
    concurrency_limit: int | None
    rate_key: str | None
    rate_interval_s: float | None


class Admission(NamedTuple):
    """What a claim does with its candidates."""

    #: the candidates to lease, in their order
    admitted: list[int]
    #: candidates their rate limit holds back: (seq, the time, in seconds since the epoch, of their turn)
    throttled: list[tuple[int, float]]
    #: the new theoretical arrival time of each rate key that admitted or held back a message
    arrivals: dict[str, float]


def admit(
    candidates: Sequence[Candidate], *, leased: Mapping[str, int], arrivals: Mapping[str, float], now: float
) -> Admission:
    """Which ``candidates`` (in the claim's order) a claim at ``now`` leases.

    ``leased``: the messages of each concurrency key leased (unexpired) now; ``arrivals``: the
    theoretical arrival time of each rate key (absent: never admitted). A candidate whose
    concurrency key is full is skipped and left as it is; one whose rate key is not due is
    throttled to its turn (each later one of its key in this claim one interval later), and
    takes no slot; an admitted one takes a slot and moves its key's arrival time one interval on.
    """
    taken = dict(leased)
    times = dict(arrivals)
    admitted: list[int] = []
    throttled: list[tuple[int, float]] = []
    queued: dict[str, float] = {}  # rate key -> the turn of its next throttled candidate
    for c in candidates:
        key = c.concurrency_key
        if key is not None and taken.get(key, 0) >= (c.concurrency_limit or 1):
            continue
        rate = c.rate_key
        if rate is not None:
            interval = c.rate_interval_s or 0.0
            arrival = times.get(rate, now)
            if arrival > now:
                turn = queued.get(rate, arrival)
                throttled.append((c.seq, turn))
                queued[rate] = turn + interval
                continue
            times[rate] = max(arrival, now) + interval
        if key is not None:
            taken[key] = taken.get(key, 0) + 1
        admitted.append(c.seq)
    changed = {rate: times[rate] for rate in times if times[rate] != arrivals.get(rate)}
    return Admission(admitted, throttled, changed)
