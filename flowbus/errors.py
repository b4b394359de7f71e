"""The exceptions flowbus raises. Every one derives from :class:`FlowbusError`.

::

    FlowbusError
    ├── ConfigError                 a config file does not load or validate (every issue collected)
    ├── ExpressionError             (flowbus.expr) a path or expression does not compile or evaluate
    │   ├── ExpressionSyntaxError
    │   ├── ExpressionRuntimeError
    │   └── ExpressionLimitError
    ├── EventValidationError        published properties do not match the event definition
    ├── UnknownNameError            a flow, event, source or action name that is not defined
    └── RunError                    a run did not succeed
        ├── RunFailed               a step failed; the run's unit of work was rolled back
        ├── RunRejected             a validate step refused the input (not retried)
        └── ChainTooDeep            an event chain went past the configured depth

Each class docstring is its default message.
"""

from __future__ import annotations


class FlowbusError(Exception):
    """A flowbus operation failed."""

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (self.__doc__ or "").strip()
        super().__init__(self.message)
