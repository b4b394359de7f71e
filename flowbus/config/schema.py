"""Validators built once from typed property declarations (event properties, flow inputs)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NotRequired, Required

from pydantic import ConfigDict, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from flowbus.errors import EventValidationError
from flowbus.events.types import annotation_for

if TYPE_CHECKING:  # the config imports this module: no import back at run time
    from flowbus.config.model import Property


class PropertySchema:
    """Validates a mapping of values against declared properties, in one pydantic call.

    Unknown names, missing required names and ill-typed values are all reported together,
    each under its property name, in one :class:`EventValidationError`.
    """

    def __init__(self, subject: str, properties: Mapping[str, Property]) -> None:
        self.subject = subject
        self.properties = dict(properties)
        fields: dict[str, Any] = {}
        for name, prop in self.properties.items():
            annotation = annotation_for(prop.type, items=prop.items, scale=prop.scale)
            # an input with a default may be left out: the default fills it in
            fields[name] = Required[annotation] if prop.needs_value else NotRequired[annotation | None]
        # the functional TypedDict form builds the shape at run time, which mypy cannot follow
        make_shape: Any = TypedDict
        shape = make_shape(subject.replace(" ", "_") or "Properties", fields)
        shape.__pydantic_config__ = ConfigDict(extra="forbid")
        self._adapter: TypeAdapter[dict[str, Any]] = TypeAdapter(shape)

    def validate(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The validated, canonical values; raises :class:`EventValidationError` naming each bad property."""
        try:
            return self._adapter.validate_python(values)
        except ValidationError as exc:
            raise EventValidationError(self.subject, _problems(exc)) from None

    def json_schema(self) -> dict[str, Any]:
        schema = self._adapter.json_schema()
        schema["title"] = self.subject
        for name, prop in self.properties.items():
            if prop.description and name in schema.get("properties", {}):
                schema["properties"][name]["description"] = prop.description
        return schema


def event_json_schema(project: str, name: str, version: int, properties: Mapping[str, Property]) -> dict[str, Any]:
    """The JSON Schema of one event version's properties: its ``$id`` and title name the version,
    so that the schemas of two versions of one event never pass for each other."""
    title = f"{name} v{version}"
    schema = PropertySchema(title, properties).json_schema()
    return {"$id": f"urn:flowbus:{project}:event:{name}:v{version}", **schema}


def _problems(exc: ValidationError) -> dict[str, str]:
    problems: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        name = str(loc[0]) if loc else "(properties)"
        message = _message(error)
        if len(loc) > 1:
            message = f"at {'.'.join(str(p) for p in loc[1:])}: {message}"
        problems.setdefault(name, message)
    return problems


def _message(error: Any) -> str:
    kind = error["type"]
    if kind == "missing":
        return "required, but missing"
    if kind == "extra_forbidden":
        return "not a declared property"
    if kind in ("dict_type", "model_type") and not error["loc"]:
        return "properties must be an object"
    if kind == "value_error":
        return str(error.get("ctx", {}).get("error", error["msg"]))
    return str(error["msg"])
