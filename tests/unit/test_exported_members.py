"""The public API is what `flowbus.__all__` says: pinned so that a change to it is deliberate."""

from __future__ import annotations

import flowbus
import flowbus.testing


def test_the_package_exports_exactly_its_public_api():
    assert sorted(flowbus.__all__) == [
        "ConfigError", "Engine", "EventInstance", "EventValidationError", "FlowbusError", "LimitExceeded",
        "LoadedConfig", "Rejected", "Run", "RunError", "RunFailed", "RunStatus", "RuntimeLimits", "StepContext",
        "StepFailed", "StepRun", "StepStatus", "UnknownNameError", "load_config", "load_config_text",
    ]  # fmt: skip
    for name in flowbus.__all__:
        assert getattr(flowbus, name).__module__.startswith("flowbus.")


def test_the_testing_module_exports_its_helpers():
    assert sorted(flowbus.testing.__all__) == ["MemoryBackend", "entities", "memory_engine", "seed_entities"]


def test_every_flowbus_error_descends_from_the_root():
    for name in flowbus.__all__:
        member = getattr(flowbus, name)
        if isinstance(member, type) and issubclass(member, Exception):
            assert issubclass(member, flowbus.FlowbusError), name
