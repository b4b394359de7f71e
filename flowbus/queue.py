"""Queued messages with SQS FIFO semantics (design §5): the records and the retry policy.

Two logical queues per project: ``inbound`` holds raw messages from sources, ``outbound`` one
message per async handler of each published event. A message with a ``group_key`` is delivered
only when every earlier message of its group is finished (done or unmatched, or parked in the
dead-letter queue); messages of different groups, and messages without a group, go on in parallel.

The states a message goes through::

    scheduled (sent with a delay, or debounced) --due, at a claim--+
                                                                   v
    ready --claim--> leased --ack--> done (or unmatched: a source message no trigger flow takes)
      ^                 |
      +---- retry ------+--(attempts used up)--> dead  (parked: the group goes on;
      |                                                 blocked: the group waits)
      +---- redrive ----------------------------------+
"""

from __future__ import annotations

import datetime as dt
import enum
import random
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_DEDUP_WINDOW_S = 300.0
DEFAULT_LEASE_S = 30.0
#: the priority of a message whose handler sets none (0-9, higher first)
DEFAULT_PRIORITY = 5


class QueueName(enum.StrEnum):
    INBOUND = "inbound"  #: raw messages from sources, routed to trigger flows
    OUTBOUND = "outbound"  #: messages running async handlers of published events


class MessageKind(enum.StrEnum):
    SOURCE = "source"  #: a raw payload from a source: body {source, type, data}
    HANDLER = "handler"  #: run one async handler for one event instance: body {handler, event_id}
    EVENT = "event"  #: publish an event received from outside: body {event, properties, source}
    FLOW = "flow"  #: run a logic flow for a schedule's tick: body {flow, inputs, schedule, tick}


class MessageState(enum.StrEnum):
    READY = "ready"  #: waiting to be claimed (maybe not before ``available_at``)
    LEASED = "leased"  #: claimed by a worker until ``lease_expires_at``
    DONE = "done"  #: processed; kept for de-duplication and traces
    UNMATCHED = "unmatched"  #: a source message no enabled trigger flow takes; finished and kept, as done
    DEAD = "dead"  #: attempts used up; in the dead-letter queue
    #: sent with a delay: out of the claims' way until ``available_at``, when a claim makes it ready
    #: (it holds its FIFO group meanwhile, as any open message does)
    SCHEDULED = "scheduled"
    #: shown, never stored: a scheduled message holding a debounce burst (see :class:`Debounce`),
    #: whose body is replaced by each later event of its key until it is due
    DEBOUNCED = "debounced"


#: the state shown for a message not due yet: a delayed one, or a ready one waiting out a retry's backoff
SCHEDULED = MessageState.SCHEDULED.value
#: the state shown for a scheduled message that holds a debounce burst
DEBOUNCED = MessageState.DEBOUNCED.value
#: the state shown for a message held back until ``available_at`` without spending an attempt: by
#: its rate limit, a target's rate limit or a server's ``Retry-After``
THROTTLED = "throttled"
#: the state shown for a ready, due message whose concurrency key has every slot taken
WAITING_FOR_SLOT = "waiting_for_slot"


class AttemptError(NamedTuple):
    """One failed attempt of a message."""

    attempt: int
    error: str
    at: dt.datetime
    config_version: int | None = None


class Debounce(NamedTuple):
    """How a message is debounced: sent scheduled ``period_s`` ahead, it takes the place of the
    scheduled message of the same ``key`` if there is one (its body replaced, its time moved to
    ``period_s`` from now but never past ``max_wait_s`` after the burst's first message)."""

    #: the burst the message belongs to, in its queue (the handler and the key's value)
    key: str
    period_s: float
    #: None: a burst may wait as long as its messages keep coming
    max_wait_s: float | None = None


class OutgoingMessage(NamedTuple):
    """A message to enqueue."""

    queue: QueueName
    kind: MessageKind
    body: Any
    group_key: str | None = None
    dedup_id: str | None = None
    config_version: int | None = None
    #: invisible to workers until then (a delay, a not-before time); None: ready now
    not_before: dt.datetime | None = None
    #: the W3C trace context it was sent in, as stored (flowbus.telemetry); None untraced
    trace_context: str | None = None
    #: debounced (then ``not_before`` and ``dedup_id`` are not used): see :class:`Debounce`
    debounce: Debounce | None = None
    #: at most ``concurrency_limit`` messages of one ``concurrency_key`` are leased at once (flowbus.limits)
    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    #: messages of one ``rate_key`` are admitted at least ``rate_interval_s`` apart (flowbus.limits)
    rate_key: str | None = None
    rate_interval_s: float | None = None
    #: 0-9, higher claimed first; a FIFO group's order holds whatever its messages' priorities
    priority: int = DEFAULT_PRIORITY


def source_message(
    source: str,
    event_type: str,
    data: Any,
    group_key: str | None,
    dedup_id: str | None,
    config_version: int | None,
    not_before: dt.datetime | None = None,
    trace_context: str | None = None,
) -> OutgoingMessage:
    """A raw message from ``source`` for the inbound queue, to run on ``config_version``."""
    body = {"source": source, "type": event_type, "data": data}
    return OutgoingMessage(
        QueueName.INBOUND, MessageKind.SOURCE, body, group_key, dedup_id, config_version,
        not_before=not_before, trace_context=trace_context,
    )  # fmt: skip


class QueuedMessage(NamedTuple):
    """A message as stored in a queue."""

    id: str
    queue: QueueName
    kind: MessageKind
    body: Any
    group_key: str | None
    dedup_id: str | None
    state: MessageState
    attempts: int
    config_version: int | None
    created_at: dt.datetime
    available_at: dt.datetime
    lease_owner: str | None = None
    lease_expires_at: dt.datetime | None = None
    errors: tuple[AttemptError, ...] = ()
    #: a dead message that holds its group (on_failure: block) until redriven
    blocking: bool = False
    #: the W3C trace context it was sent in, as stored (flowbus.telemetry); None untraced
    trace_context: str | None = None
    #: the debounce burst it holds or held (:attr:`Debounce.key`); None: not debounced
    debounce_key: str | None = None
    #: how many messages its burst folded into it: it runs for the last of them (0: not debounced)
    debounced: int = 0
    #: the times a server's ``Retry-After`` gave it back (bounded by its target's ``max_deferrals``)
    deferrals: int = 0
    #: given back by a target's rate limit or a server's ``Retry-After`` without spending an
    #: attempt, until ``available_at`` (shown ``throttled``)
    throttled: bool = False
    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    rate_key: str | None = None
    rate_interval_s: float | None = None
    priority: int = DEFAULT_PRIORITY
    #: why a message is held back, when it is: THROTTLED (its rate limit scheduled it for
    #: ``available_at``) or WAITING_FOR_SLOT (as read: every slot of its concurrency key taken)
    held: str | None = None

    def shown_state(self, now: dt.datetime) -> str:
        """The state a user sees: ``debounced`` for a scheduled message holding a debounce burst,
        ``throttled`` for one held back by a rate limit or a server's ``Retry-After`` and not due
        yet, ``scheduled`` for another one not due yet (delayed, or waiting out a retry's
        backoff), ``waiting_for_slot`` for a due one whose concurrency key has no free slot, and
        ``throttled`` for a due one whose rate key's next turn is ahead (as read), else its stored
        state."""
        if self.state is MessageState.SCHEDULED and self.debounce_key is not None:
            return DEBOUNCED
        if (self.held == THROTTLED or self.throttled) and self.available_at > now:
            return THROTTLED
        if self.state is MessageState.READY:
            if self.available_at > now:
                return SCHEDULED
            if self.held in (WAITING_FOR_SLOT, THROTTLED):  # as read: due, its slot or turn not come
                return self.held
        return self.state.value

    def to_dict(self) -> dict[str, Any]:
        """The message as plain data, its errors included (for the CLI and the API); its state as
        a user sees it (:meth:`shown_state`)."""
        data = self._asdict()
        data["state"] = self.shown_state(dt.datetime.now(dt.UTC))
        data["errors"] = [error._asdict() for error in self.errors]
        return data


OnFailure = Literal["block", "park"]


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How often, and how far apart, a failing message is tried again, and what happens after."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff_s: float = 1.0
    max_backoff_s: float = 300.0
    on_failure: OnFailure = "park"

    def delay_s(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1``: exponential, with jitter.

        The draw between half and all of the exponential bound spreads the retries of many
        messages that failed together, and never brings one back almost at once.
        """
        bound = min(self.max_backoff_s, self.backoff_s * 2 ** max(attempt - 1, 0))
        return (rng or random).uniform(bound / 2, bound)
