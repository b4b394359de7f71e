"""flowbus: an event-driven flow engine.

Declare sources, typed events, flows, handlers and targets in one config file; publish events;
run flows; see every run's trace.

::

    from flowbus import Engine

    engine = Engine.from_file("flowbus.yaml")
    event = await engine.publish("OrderPlaced", {...})
    await engine.drain()
"""

from flowbus.config import ConfigError, LoadedConfig, load_config, load_config_text
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
from flowbus.events.instance import EventInstance
from flowbus.runtime.context import StepContext
from flowbus.runtime.engine import Engine, RuntimeLimits
from flowbus.runtime.records import Run, RunStatus, StepRun, StepStatus

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
