"""flowbus: an event-driven flow engine.

Declare sources, typed events, flows, handlers and targets in one config file; publish events;
run flows; see every run's trace.

::

    from flowbus import Engine

    engine = Engine.from_file("flowbus.yaml")
    event = await engine.publish("OrderPlaced", {...})
    await engine.drain()
"""

from typing import TYPE_CHECKING

from flowbus.errors import (
    EventValidationError,
    FlowbusError,
    LimitExceeded,
    Rejected,
    RunError,
    RunFailed,
    StepFailed,
    UnknownNameError,
)
from flowbus.lazy import lazy_attributes

if TYPE_CHECKING:
    from flowbus.config import ConfigError, LoadedConfig, load_config, load_config_text
    from flowbus.engine import Engine
    from flowbus.events.instance import EventInstance
    from flowbus.runtime.bounds import RuntimeLimits
    from flowbus.runtime.context import StepContext
    from flowbus.runtime.records import Run, RunStatus, StepRun, StepStatus

# The engine and the config models are imported when first used, not by ``import flowbus``:
# the CLI and the stores import submodules of this package and must not pay for them.
__getattr__ = lazy_attributes(__name__, {
    **dict.fromkeys(("ConfigError", "LoadedConfig", "load_config", "load_config_text"), "flowbus.config"),
    "EventInstance": "flowbus.events.instance",
    "StepContext": "flowbus.runtime.context",
    "Engine": "flowbus.engine",
    "RuntimeLimits": "flowbus.runtime.bounds",
    **dict.fromkeys(("Run", "RunStatus", "StepRun", "StepStatus"), "flowbus.runtime.records"),
})  # fmt: skip

__all__ = [
    "ConfigError",
    "Engine",
    "EventInstance",
    "EventValidationError",
    "FlowbusError",
    "LimitExceeded",
    "LoadedConfig",
    "Rejected",
    "Run",
    "RunError",
    "RunFailed",
    "RunStatus",
    "RuntimeLimits",
    "StepContext",
    "StepFailed",
    "StepRun",
    "StepStatus",
    "UnknownNameError",
    "load_config",
    "load_config_text",
]
