"""The step models of a flow: one model per built-in action, and one for custom actions.

A step's value fields (``data``, ``properties``, ``condition``...) hold raw config values:
``$``-paths, ``=``-expressions or literals. They are compiled by :mod:`flowbus.config.plan`.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from flowbus.config.base import Identifier, Model, Name

Value = Annotated[Any, Field(description="a literal, a `$` JSONPath or an `=` expression")]
Steps = list["Step"]


class BaseStep(Model):
    id: Identifier = Field(description="unique within the flow; later steps read its output as `steps.<id>`")
    description: str = ""

    # every concrete step narrows this to its Literal; CustomStep keeps any identifier
    action: str


class SetStep(BaseStep):
    """Set run variables, readable as `vars.<name>`."""

    action: Literal["set"]
    vars: dict[Identifier, Value]


class Rule(Model):
    check: Value = Field(description="must evaluate to true")
    message: Value = Field(description="why the input is refused when the check is false (may be an expression)")


class ValidateStep(BaseStep):
    """Check rules; the first false one ends the run as rejected (never retried)."""

    action: Literal["validate"]
    rules: list[Rule] = Field(min_length=1)


class IfStep(BaseStep):
    action: Literal["if"]
    condition: Value
    then: Steps = Field(default_factory=list)
    else_: Steps = Field(default_factory=list, alias="else")


class Case(Model):
    equals: Value = Field(description="a literal compared with the switch value")
    steps: Steps


class SwitchStep(BaseStep):
    action: Literal["switch"]
    value: Value
    cases: list[Case] = Field(min_length=1)
    default: Steps = Field(default_factory=list)


class ForeachStep(BaseStep):
    """Run nested steps once per item, with `item` and `index` bound."""

    action: Literal["foreach"]
    items: Value
    steps: Steps = Field(min_length=1)
    max_items: int | None = Field(default=None, ge=1, description="refuse lists longer than this")


class EntityStep(BaseStep):
    target: Name = Field(default="store", description="a target of type store")
    entity: Identifier


class SaveStep(EntityStep):
    """Create or replace an entity record."""

    action: Literal["save"]
    data: Value
    key: Identifier | None = Field(default=None, description="the field of `data` that identifies the record")


class UpsertStep(EntityStep):
    """Merge `data` into the record with the same key, creating it when absent."""

    action: Literal["upsert"]
    data: Value
    key: Identifier | None = None


class UpdateStep(EntityStep):
    """Merge `data` into an existing record; fails when there is none."""

    action: Literal["update"]
    record_id: Value = Field(description="the key value of the record")
    data: Value


class DeleteStep(EntityStep):
    action: Literal["delete"]
    record_id: Value = Field(description="the key value of the record")


class GetStep(EntityStep):
    action: Literal["get"]
    record_id: Value = Field(description="the key value of the record")
    required: bool = Field(default=False, description="fail the step when the record does not exist")


class HttpStep(BaseStep):
    """Send a request to an HTTP target, with retries and an idempotency key."""

    action: Literal["http"]
    target: Name
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    path: Value = ""
    query: dict[str, Value] = Field(default_factory=dict)
    headers: dict[str, Value] = Field(default_factory=dict)
    body: Value = None


class PublishStep(BaseStep):
    """Publish an event instance of a defined event."""

    action: Literal["publish"]
    event: Name
    event_version: int | None = Field(
        default=None, ge=1, description="the version of the event it publishes (default: the latest defined)"
    )
    properties: dict[Identifier, Value] = Field(default_factory=dict)


class CallStep(BaseStep):
    """Run a logic flow and take its outputs."""

    action: Literal["call"]
    flow: Name
    inputs: dict[Identifier, Value] = Field(default_factory=dict)


class OutputStep(BaseStep):
    """Set outputs of the run (Set Output)."""

    action: Literal["output"]
    values: dict[Identifier, Value]


class LogStep(BaseStep):
    action: Literal["log"]
    message: Value
    level: Literal["debug", "info", "warning", "error"] = "info"


class FailStep(BaseStep):
    action: Literal["fail"]
    message: Value


class CustomStep(BaseStep):
    """A step whose action is registered in Python with `Engine.register_action`."""

    action: Identifier
    with_: dict[Identifier, Value] = Field(default_factory=dict, alias="with")

    @model_validator(mode="before")
    @classmethod
    def _likely_a_typo(cls, data: Any) -> Any:
        # a misspelt built-in action lands here; say so rather than "unknown field 'entity'"
        if isinstance(data, dict):
            extra = sorted(set(data) - {"id", "description", "action", "with"})
            if extra:
                action = data.get("action")
                near = difflib.get_close_matches(str(action), list(BUILTIN_STEPS), n=1)
                hint = f"did you mean {near[0]!r}? " if near else ""
                raise ValueError(
                    f"{action!r} is not a built-in action; {hint}a custom action takes its parameters "
                    f"under `with`, not as {', '.join(repr(e) for e in extra)}"
                )
        return data


BUILTIN_STEPS: dict[str, type[BaseStep]] = {
    "set": SetStep,
    "validate": ValidateStep,
    "if": IfStep,
    "switch": SwitchStep,
    "foreach": ForeachStep,
    "save": SaveStep,
    "upsert": UpsertStep,
    "update": UpdateStep,
    "delete": DeleteStep,
    "get": GetStep,
    "http": HttpStep,
    "publish": PublishStep,
    "call": CallStep,
    "output": OutputStep,
    "log": LogStep,
    "fail": FailStep,
}
ENTITY_ACTIONS = frozenset({"save", "upsert", "update", "delete", "get"})


def _step_kind(value: Any) -> str:
    action = value.get("action") if isinstance(value, dict) else getattr(value, "action", None)
    if isinstance(action, str) and action in BUILTIN_STEPS:
        return action
    return "custom"


Step = Annotated[
    Annotated[SetStep, Tag("set")]
    | Annotated[ValidateStep, Tag("validate")]
    | Annotated[IfStep, Tag("if")]
    | Annotated[SwitchStep, Tag("switch")]
    | Annotated[ForeachStep, Tag("foreach")]
    | Annotated[SaveStep, Tag("save")]
    | Annotated[UpsertStep, Tag("upsert")]
    | Annotated[UpdateStep, Tag("update")]
    | Annotated[DeleteStep, Tag("delete")]
    | Annotated[GetStep, Tag("get")]
    | Annotated[HttpStep, Tag("http")]
    | Annotated[PublishStep, Tag("publish")]
    | Annotated[CallStep, Tag("call")]
    | Annotated[OutputStep, Tag("output")]
    | Annotated[LogStep, Tag("log")]
    | Annotated[FailStep, Tag("fail")]
    | Annotated[CustomStep, Tag("custom")],
    Discriminator(_step_kind),
]


def child_blocks(step: BaseStep) -> list[tuple[tuple[str | int, ...], list[BaseStep]]]:
    """The nested step lists of a control step, with their field path relative to the step."""
    if isinstance(step, IfStep):
        return [(("then",), list(step.then)), (("else",), list(step.else_))]
    if isinstance(step, SwitchStep):
        blocks: list[tuple[tuple[str | int, ...], list[BaseStep]]] = [
            (("cases", i, "steps"), list(case.steps)) for i, case in enumerate(step.cases)
        ]
        return [*blocks, (("default",), list(step.default))]
    if isinstance(step, ForeachStep):
        return [(("steps",), list(step.steps))]
    return []


for _model in (IfStep, Case, SwitchStep, ForeachStep):
    _model.model_rebuild()
