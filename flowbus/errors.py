"""The exceptions flowbus raises. Every one derives from :class:`FlowbusError`.

::

    FlowbusError
    ├── ConfigError                 a config file does not load or validate (every issue collected)
    ├── ExpressionError             (flowbus.expr) a path or expression does not compile or evaluate
    │   ├── ExpressionSyntaxError
    │   ├── ExpressionRuntimeError
    │   └── ExpressionLimitError
    ├── PathNotFound                (flowbus.config.values) a `$` path matched nothing
    ├── EventValidationError        properties or inputs do not match their declarations
    ├── UnknownNameError            a flow, event, source, handler or action that is not defined
    └── RunError                    a run did not succeed
        ├── StepFailed              an action could not do its work (a `fail` step, a missing record...)
        ├── Rejected                a validate rule did not hold (the run ends rejected, not retried)
        ├── LimitExceeded           a run went past a bound: call depth, loop size, step count
        │   └── ChainLimitExceeded  an event chain went past its depth or the events its root may cause
        ├── RunFailed               raised to a Python caller whose publish or run failed; carries the run
        └── Deferred                not a failure: the message is given back until a time, no attempt spent

Each class docstring is its default message. An error whose ``permanent`` is True fails the same
way on every attempt (its input does not change): the worker dead-letters its message at once.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Iterable


class FlowbusError(Exception):
    """A flowbus operation failed."""

    #: True: another attempt would fail the same way, so a queued message is not retried
    permanent = False

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (self.__doc__ or "").strip()
        super().__init__(self.message)


class EventValidationError(FlowbusError):
    """Values do not match their declared properties."""

    permanent = True

    def __init__(self, subject: str, problems: dict[str, str]) -> None:
        self.subject = subject
        self.problems = problems
        detail = "; ".join(f"{name}: {reason}" for name, reason in problems.items())
        super().__init__(f"{subject}: {detail}")


class UnknownNameError(FlowbusError):
    """No such name is defined."""


class RunError(FlowbusError):
    """A run did not succeed."""


class StepFailed(RunError):
    """A step could not do its work."""


class Rejected(RunError):
    """A validate rule did not hold."""


class LimitExceeded(RunError):
    """A run went past one of its bounds."""


class ChainLimitExceeded(LimitExceeded):
    """An event chain went past one of its bounds."""

    # a chain's depth and the events its root caused only grow: every retry would hit the bound
    permanent = True


class RunFailed(RunError):
    """The run failed; its unit of work was rolled back."""

    def __init__(self, message: str, *, run: object | None = None) -> None:
        self.run = run
        super().__init__(message)


class Deferred(RunError):
    """The message is given back to its queue until a time, without spending an attempt."""

    def __init__(self, until: dt.datetime, reason: str, *, target: str = "", counted: bool = False) -> None:
        self.until = until
        #: the target that asked for it (for the deferrals counted per target in /metrics)
        self.target = target
        #: True: it counts against the message's bound of deferrals (a server's ``Retry-After``);
        #: False: it does not (the target's own rate limit, which lets every call through in time)
        self.counted = counted
        super().__init__(reason)


class StoreError(FlowbusError):
    """The store failed (a database error, translated at the backend boundary)."""


class StoreUnavailable(StoreError):
    """The store cannot be reached now (a dropped connection, a server that refuses, a locked
    file): waited out, and never charged to a message. Any other :class:`StoreError` is about
    what was asked (data the database refuses), and asking again would fail again."""


def did_you_mean(name: str, names: Iterable[str]) -> str:
    """``; did you mean: a, b?`` naming up to three of ``names`` close to ``name`` (difflib), or ``""``."""
    near = difflib.get_close_matches(name, list(names), n=3)
    return f"; did you mean: {', '.join(near)}?" if near else ""
