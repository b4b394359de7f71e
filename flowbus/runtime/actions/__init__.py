"""The built-in step actions, one module per family. Each is a :data:`flowbus.config.plan.StepFn`."""

from __future__ import annotations

from flowbus.runtime.actions import control, data, entities, events, http
from flowbus.runtime.context import StepFn

BUILTIN_ACTIONS: dict[str, StepFn] = {
    "set": data.set_vars,
    "validate": data.validate,
    "output": data.output,
    "log": data.log,
    "fail": data.fail,
    "if": control.if_,
    "switch": control.switch,
    "foreach": control.foreach,
    "call": control.call,
    "save": entities.save,
    "upsert": entities.upsert,
    "update": entities.update,
    "delete": entities.delete,
    "get": entities.get,
    "publish": events.publish,
    "http": http.http,
}
