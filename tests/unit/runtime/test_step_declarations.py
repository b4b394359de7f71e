"""A built-in step is declared once, on its model, and has exactly one action registered for it.

The models live in config (which does not import the runtime) and the actions in the runtime:
these tests are what holds the two halves together.
"""

from __future__ import annotations

import textwrap
from typing import Annotated, Any, Literal, get_args, get_origin

import pytest

from flowbus.config import load_config_text
from flowbus.config.steps import BUILTIN_STEPS, BaseStep, CustomStep, Refers, builtin_step
from flowbus.runtime.actions import BUILTIN_ACTIONS
from flowbus.runtime.actions.builtins import ACTIONS_BY_MODEL, builtin_action

DECLARED_MODELS = [*BUILTIN_STEPS.values(), CustomStep]


def test_every_builtin_step_model_has_an_action_and_every_action_a_model():
    models = set(BUILTIN_STEPS.values())
    registered = set(ACTIONS_BY_MODEL)
    assert sorted(m.__name__ for m in models - registered) == [], "built-in step models without an action"
    assert sorted(m.__name__ for m in registered - models) == [], "actions registered for no built-in step model"
    assert list(BUILTIN_ACTIONS) == list(BUILTIN_STEPS)


@pytest.mark.parametrize("model", DECLARED_MODELS, ids=lambda m: m.__name__)
def test_the_fields_a_model_declares_are_its_own(model: type[BaseStep]):
    spec = model.spec
    declared = [name for _, name in spec.values] + list(spec.refers.fields() if spec.refers else ())
    assert [name for name in declared if name not in model.model_fields] == []
    # params are keyed as the config spells the field, so that an error in one points at it
    assert [key for key, name in spec.values] == [model.model_fields[name].alias or name for _, name in spec.values]


def _holds_values(annotation: Any) -> bool:
    """A field holding a config value (a literal, a `$` path or an `=` expression), or a map of them."""
    if annotation is Any:
        return True
    if get_origin(annotation) is dict:
        value = get_args(annotation)[1]
        return (get_args(value)[0] if get_origin(value) is Annotated else value) is Any
    return False


@pytest.mark.parametrize("model", DECLARED_MODELS, ids=lambda m: m.__name__)
def test_every_field_that_holds_values_is_a_declared_value_field(model: type[BaseStep]):
    # one left out would reach its action as raw text, `$.x` or `=a + b`, never evaluated
    holding = {name for name, field in model.model_fields.items() if _holds_values(field.annotation)}
    assert holding == {name for _, name in model.spec.values}


def test_only_http_and_custom_steps_are_journaled():
    # their effects reach outside the run's unit of work; the others' effects are in its changeset
    assert [a for a, model in BUILTIN_STEPS.items() if model.spec.journaled] == ["http"]
    assert CustomStep.spec.journaled


def test_a_declared_field_the_model_does_not_have_is_refused_on_import():
    class MisspeltStep(BaseStep):
        action: Literal["misspelt"]
        data: Any

    with pytest.raises(TypeError, match=r"MisspeltStep declares fields it does not have: dta"):
        builtin_step("dta", journaled=False)(MisspeltStep)
    with pytest.raises(TypeError, match=r"does not have: flow"):
        builtin_step("data", journaled=False, refers=Refers("flow", "flow"))(MisspeltStep)
    assert "misspelt" not in BUILTIN_STEPS


def test_a_second_model_for_a_builtin_action_is_refused():
    class AnotherSet(BaseStep):
        action: Literal["set"]

    with pytest.raises(TypeError, match=r"two built-in steps for action 'set'"):
        builtin_step(journaled=False)(AnotherSet)
    assert BUILTIN_STEPS["set"].__name__ == "SetStep"


def test_a_second_action_for_a_model_is_refused():
    async def another(ctx: Any, params: dict[str, Any]) -> Any:
        return None

    with pytest.raises(TypeError, match=r"SetStep already has an action: set_vars"):
        builtin_action(BUILTIN_STEPS["set"])(another)


def test_the_plan_compiles_the_declared_value_fields_and_marks_journaled_steps():
    loaded = load_config_text(
        textwrap.dedent("""
        targets:
          - {name: api, type: http, base_url: "https://api.example"}
        flows:
          - name: f
            inputs: {n: {type: Integer}}
            steps:
              - {id: up, action: http, target: api, path: "=inputs.n", body: {n: "$.n"}}
              - {id: mine, action: enrich, with: {n: "=inputs.n + 1"}}
              - {id: keep, action: save, entity: Thing, data: {n: "=inputs.n"}}
              - {id: o, action: output, values: {n: "=steps.keep.n"}}
        """),
        file="f.yaml",
    )
    steps = loaded.plan.flows["f"].steps
    assert [(s.action, s.journaled) for s in steps] == [
        ("http", True),
        ("enrich", True),
        ("save", False),
        ("output", False),
    ]
    scope = {"inputs": {"n": 41}, "steps": {"keep": {"n": 41}}, "data": {"n": 7}}
    assert [s.params.evaluate(scope) for s in steps] == [
        {"path": 41, "query": {}, "headers": {}, "body": {"n": 7}},
        {"with": {"n": 42}},
        {"data": {"n": 41}},
        {"values": {"n": 41}},
    ]


def test_a_custom_action_says_whether_its_effects_reach_outside():
    from flowbus.errors import FlowbusError
    from flowbus.runtime.registry import ActionRegistry

    async def slugify(ctx, params):
        return params

    registry = ActionRegistry()
    registry.register("slugify", slugify, effects="none")
    assert "slugify" in registry.unjournaled
    registry.register("slugify", slugify)  # registered again: external, the default
    assert "slugify" not in registry.unjournaled
    with pytest.raises(FlowbusError, match="must be 'none' or 'external', not 'some'"):
        registry.register("slugify", slugify, effects="some")  # type: ignore[arg-type]
    with pytest.raises(FlowbusError, match="'log' is a built-in action and cannot be replaced"):
        registry.register("log", slugify)
