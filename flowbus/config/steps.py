"""The step models of a flow: one model per built-in action, and one for custom actions.

A step's value fields (``data``, ``properties``, ``condition``...) hold raw config values:
``$``-paths, ``=``-expressions or literals. They are compiled by :mod:`flowbus.config.plan`.

A built-in step is declared once, by :func:`builtin_step` on its model: which fields are value
fields, which field names something the config defines, whether it is journaled. The step union,
the plan's params, the reference checks and the runtime's choice of journal all read that
declaration; the action itself is registered next to its function, in
:mod:`flowbus.runtime.actions`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeVar, Union, get_args

from pydantic import Discriminator, Field, Tag, model_validator

from flowbus import delays
from flowbus.config.base import Identifier, Model, Name

Value = Annotated[Any, Field(description="a literal, a `$` JSONPath or an `=` expression")]
Steps = list["Step"]
#: a nested step list of a control step, with its field path relative to the step
Block = tuple[tuple[str | int, ...], list["BaseStep"]]


@dataclass(frozen=True, slots=True)
class Refers:
    """A field of a step that names something the config defines, checked when the config loads."""

    #: what it names: a store target, an http target, an event or a flow
    kind: Literal["store", "http", "event", "flow"]
    field: str
    #: the field giving the version of the event it names
    version: str | None = None
    #: a map field whose keys must be properties of the event (or inputs of the flow) it names
    given: str | None = None

    def fields(self) -> tuple[str, ...]:
        return tuple(f for f in (self.field, self.version, self.given) if f is not None)


@dataclass(frozen=True, slots=True)
class StepSpec:
    """What the rest of flowbus needs to know of a step model, declared beside it."""

    #: its tag in the step union: the action name of a built-in step, ``custom`` for the others
    tag: str
    #: (config key, model attribute) of each value field: compiled into the step's params, under the
    #: key the config uses, so that an error in a value points at the field the user wrote
    values: tuple[tuple[str, str], ...]
    #: its effects live outside the run's unit of work (a request, a custom action's own doing), so
    #: a run for a queued message journals its output the moment it finishes and a later attempt
    #: replays it; the other actions' effects are in the changeset, applied once or not at all
    journaled: bool
    refers: Refers | None

    @classmethod
    def of(
        cls, model: type[BaseStep], tag: str, values: tuple[str, ...], *, journaled: bool, refers: Refers | None
    ) -> StepSpec:
        """The spec of ``model``; refuses a field the model does not have, so a typo fails on import."""
        fields = model.model_fields
        unknown = [f for f in (*values, *(refers.fields() if refers else ())) if f not in fields]
        if unknown:
            raise TypeError(f"{model.__name__} declares fields it does not have: {', '.join(unknown)}")
        keyed = tuple((fields[name].alias or name, name) for name in values)
        return cls(tag=tag, values=keyed, journaled=journaled, refers=refers)

    def params(self, step: BaseStep) -> dict[str, Any]:
        """The raw value fields of ``step``, keyed as they are in the config."""
        return {key: getattr(step, name) for key, name in self.values}


class BaseStep(Model):
    id: Identifier = Field(description="unique within the flow; later steps read its output as `steps.<id>`")
    description: str = ""

    # every concrete step narrows this to its Literal; CustomStep keeps any identifier
    action: str

    #: set by @builtin_step (and on CustomStep); every step model that can be parsed has one
    spec: ClassVar[StepSpec]

    def blocks(self) -> list[Block]:
        """The nested step lists of a control step (which overrides this); none for the others."""
        return []


#: action name -> model of every built-in step, in the order they are declared (by @builtin_step)
BUILTIN_STEPS: dict[str, type[BaseStep]] = {}

S = TypeVar("S", bound=BaseStep)


def builtin_step(*values: str, journaled: bool, refers: Refers | None = None) -> Callable[[type[S]], type[S]]:
    """Declare a model as the built-in step of the action its ``action`` Literal names.

    ``values`` are its value fields (by attribute name); ``refers`` the field that names a target,
    an event or a flow; ``journaled`` whether its effects live outside the run's unit of work (no
    default: a wrong guess either repeats a request on retry or replays a write that never happened).
    """

    def declare(model: type[S]) -> type[S]:
        (action,) = get_args(model.model_fields["action"].annotation)
        if action in BUILTIN_STEPS:
            raise TypeError(
                f"two built-in steps for action {action!r}: {BUILTIN_STEPS[action].__name__}, {model.__name__}"
            )
        model.spec = StepSpec.of(model, action, values, journaled=journaled, refers=refers)
        BUILTIN_STEPS[action] = model
        return model

    return declare


#: where an entity step's records live
STORE_TARGET = Refers("store", "target")


@builtin_step("vars", journaled=False)
class SetStep(BaseStep):
    """Set run variables, readable as `vars.<name>`."""

    action: Literal["set"]
    vars: dict[Identifier, Value]


class Rule(Model):
    check: Value = Field(description="must evaluate to true")
    message: Value = Field(description="why the input is refused when the check is false (may be an expression)")


@builtin_step(journaled=False)
class ValidateStep(BaseStep):
    """Check rules; the first false one ends the run as rejected (never retried)."""

    action: Literal["validate"]
    rules: list[Rule] = Field(min_length=1)


@builtin_step("condition", journaled=False)
class IfStep(BaseStep):
    action: Literal["if"]
    condition: Value
    then: Steps = Field(default_factory=list)
    else_: Steps = Field(default_factory=list, alias="else")

    def blocks(self) -> list[Block]:
        return [(("then",), list(self.then)), (("else",), list(self.else_))]


class Case(Model):
    equals: Value = Field(description="a literal compared with the switch value")
    steps: Steps


@builtin_step("value", journaled=False)
class SwitchStep(BaseStep):
    action: Literal["switch"]
    value: Value
    cases: list[Case] = Field(min_length=1)
    default: Steps = Field(default_factory=list)

    def blocks(self) -> list[Block]:
        cases: list[Block] = [(("cases", i, "steps"), list(case.steps)) for i, case in enumerate(self.cases)]
        return [*cases, (("default",), list(self.default))]


@builtin_step("items", journaled=False)
class ForeachStep(BaseStep):
    """Run nested steps once per item, with `item` and `index` bound."""

    action: Literal["foreach"]
    items: Value
    steps: Steps = Field(min_length=1)
    max_items: int | None = Field(default=None, ge=1, description="refuse lists longer than this")

    def blocks(self) -> list[Block]:
        return [(("steps",), list(self.steps))]


class EntityStep(BaseStep):
    target: Name = Field(default="store", description="a target of type store")
    entity: Identifier


@builtin_step("data", journaled=False, refers=STORE_TARGET)
class SaveStep(EntityStep):
    """Create or replace an entity record."""

    action: Literal["save"]
    data: Value
    key: Identifier | None = Field(default=None, description="the field of `data` that identifies the record")


@builtin_step("data", journaled=False, refers=STORE_TARGET)
class UpsertStep(EntityStep):
    """Merge `data` into the record with the same key, creating it when absent."""

    action: Literal["upsert"]
    data: Value
    key: Identifier | None = None


@builtin_step("record_id", "data", journaled=False, refers=STORE_TARGET)
class UpdateStep(EntityStep):
    """Merge `data` into an existing record; fails when there is none."""

    action: Literal["update"]
    record_id: Value = Field(description="the key value of the record")
    data: Value


@builtin_step("record_id", journaled=False, refers=STORE_TARGET)
class DeleteStep(EntityStep):
    action: Literal["delete"]
    record_id: Value = Field(description="the key value of the record")


@builtin_step("record_id", journaled=False, refers=STORE_TARGET)
class GetStep(EntityStep):
    action: Literal["get"]
    record_id: Value = Field(description="the key value of the record")
    required: bool = Field(default=False, description="fail the step when the record does not exist")


@builtin_step("path", "query", "headers", "body", journaled=True, refers=Refers("http", "target"))
class HttpStep(BaseStep):
    """Send a request to an HTTP target, with retries and an idempotency key."""

    action: Literal["http"]
    target: Name
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    path: Value = ""
    query: dict[str, Value] = Field(default_factory=dict)
    headers: dict[str, Value] = Field(default_factory=dict)
    body: Value = None


@builtin_step(
    "properties",
    "delay",
    "not_before",
    journaled=False,
    refers=Refers("event", "event", version="event_version", given="properties"),
)
class PublishStep(BaseStep):
    """Publish an event instance of a defined event (now, or queued until a delay has passed)."""

    action: Literal["publish"]
    event: Name
    event_version: int | None = Field(
        default=None, ge=1, description="the version of the event it publishes (default: the latest defined)"
    )
    properties: dict[Identifier, Value] = Field(default_factory=dict)
    delay: Value = Field(default=None, description="queue the event, published this long after the run (90s, 10m)")
    not_before: Value = Field(default=None, description="queue the event, published no earlier than this time")

    @model_validator(mode="after")
    def _one_delay(self) -> PublishStep:
        if self.delay is not None and self.not_before is not None:
            raise ValueError("give `delay` or `not_before`, not both")
        # a literal is checked now; a path or an expression when the step runs
        try:
            if _literal(self.delay):
                delays.not_before(self.delay)
            if _literal(self.not_before):
                delays.not_before(at=self.not_before)
        except delays.DelayError as error:
            raise ValueError(str(error).removeprefix("delay: ")) from None
        return self

    @property
    def delayed(self) -> bool:
        return self.delay is not None or self.not_before is not None


def _literal(value: Any) -> bool:
    """A value given as it is: neither absent nor a `$` path or an `=` expression."""
    return value is not None and not (isinstance(value, str) and value.startswith(("$", "=")))


@builtin_step("inputs", journaled=False, refers=Refers("flow", "flow", given="inputs"))
class CallStep(BaseStep):
    """Run a logic flow and take its outputs."""

    action: Literal["call"]
    flow: Name
    inputs: dict[Identifier, Value] = Field(default_factory=dict)


@builtin_step("values", journaled=False)
class OutputStep(BaseStep):
    """Set outputs of the run (Set Output)."""

    action: Literal["output"]
    values: dict[Identifier, Value]


@builtin_step("message", journaled=False)
class LogStep(BaseStep):
    action: Literal["log"]
    message: Value
    level: Literal["debug", "info", "warning", "error"] = "info"


@builtin_step("message", journaled=False)
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


CustomStep.spec = StepSpec.of(CustomStep, "custom", ("with_",), journaled=True, refers=None)


def _step_kind(value: Any) -> str:
    action = value.get("action") if isinstance(value, dict) else getattr(value, "action", None)
    if isinstance(action, str) and action in BUILTIN_STEPS:
        return action
    return CustomStep.spec.tag


if TYPE_CHECKING:
    Step = BaseStep
else:
    # one tagged member per built-in step, in declaration order, and custom steps last
    Step = Annotated[
        Union[  # a union of a tuple of members, which `|` cannot spell
            (
                *(Annotated[model, Tag(action)] for action, model in BUILTIN_STEPS.items()),
                Annotated[CustomStep, Tag(CustomStep.spec.tag)],
            )
        ],
        Discriminator(_step_kind),
    ]


for _model in (IfStep, Case, SwitchStep, ForeachStep):
    _model.model_rebuild()
