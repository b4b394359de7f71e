"""Each built-in step action, and custom actions registered from Python."""

from __future__ import annotations

from decimal import Decimal

import pytest

from flowbus.errors import FlowbusError
from flowbus.runtime.records import RunStatus, StepStatus
from flowbus.testing import entities, seed_entities


def flow(steps: str, inputs: str = "{x: {type: Object}}") -> str:
    return f"""
flows:
  - name: f
    inputs: {inputs}
    steps:
{steps}
"""


async def test_set_makes_variables_readable_by_later_steps(engine_for):
    engine = engine_for(
        flow("""
      - {id: a, action: set, vars: {total: 1.5, name: ada}}
      - {id: b, action: set, vars: {total: "=vars.total + 1"}}
      - {id: o, action: output, values: {total: "=vars.total", name: "=vars.name"}}
""")
    )
    run = await engine.run_flow("f", {})
    assert run.outputs == {"total": Decimal("2.5"), "name": "ada"}
    assert [s.output for s in run.steps[:2]] == [
        {"total": Decimal("1.5"), "name": "ada"},
        {"total": Decimal("2.5")},
    ]


async def test_later_steps_read_earlier_outputs_through_steps(engine_for):
    engine = engine_for(
        flow("""
      - {id: saved, action: save, entity: Thing, data: {name: "=inputs.x.name"}}
      - {id: o, action: output, values: {id: "=steps.saved.id", name: "=steps.saved.name"}}
""")
    )
    run = await engine.run_flow("f", {"x": {"name": "kettle"}})
    assert run.outputs["name"] == "kettle"
    assert entities(engine, "Thing")[run.outputs["id"]] == {
        "name": "kettle",
        "id": run.outputs["id"],
    }


async def test_validate_rejects_with_the_first_false_rule_and_is_not_a_failure(engine_for):
    engine = engine_for(
        flow("""
      - id: v
        action: validate
        rules:
          - {check: "=has(inputs.x.qty)", message: qty is missing}
          - {check: "=inputs.x.qty > 0", message: "='qty must be positive, got ' + string(inputs.x.qty)"}
      - {id: s, action: save, entity: Thing, data: {id: t}}
""")
    )
    assert (await engine.run_flow("f", {"x": {"qty": 2}})).status is RunStatus.SUCCEEDED
    run = await engine.run_flow("f", {"x": {}})
    assert (run.status, run.error) == (RunStatus.REJECTED, "qty is missing")
    run = await engine.run_flow("f", {"x": {"qty": -1}})
    assert (run.status, run.error) == (RunStatus.REJECTED, "qty must be positive, got -1")
    assert run.steps[0].status is StepStatus.REJECTED


async def test_validate_checks_must_be_booleans(engine_for):
    engine = engine_for(flow('      - {id: v, action: validate, rules: [{check: "=inputs.x", message: m}]}'))
    run = await engine.run_flow("f", {"x": {"a": 1}})
    assert run.status is RunStatus.FAILED and "must give true or false, got object" in (run.error or "")


async def test_if_runs_one_branch(engine_for):
    engine = engine_for(
        flow("""
      - id: branch
        action: if
        condition: "=inputs.x.n > 10"
        then: [{id: big, action: output, values: {size: big}}]
        else: [{id: small, action: output, values: {size: small}}]
""")
    )
    assert (await engine.run_flow("f", {"x": {"n": 11}})).outputs == {"size": "big"}
    run = await engine.run_flow("f", {"x": {"n": 1}})
    assert run.outputs == {"size": "small"}
    assert [s.key for s in run.steps] == ["branch.small", "branch"]


async def test_if_needs_a_boolean_condition(engine_for):
    engine = engine_for(flow('      - {id: b, action: if, condition: "=inputs.x.n", then: []}'))
    run = await engine.run_flow("f", {"x": {"n": 1}})
    assert run.status is RunStatus.FAILED and "condition must give true or false, got int: 1" in (run.error or "")


async def test_switch_runs_the_matching_case_or_the_default(engine_for):
    engine = engine_for(
        flow("""
      - id: tier
        action: switch
        value: "=inputs.x.tier"
        cases:
          - {equals: gold, steps: [{id: g, action: output, values: {discount: 0.2}}]}
          - {equals: 1, steps: [{id: one, action: output, values: {discount: 0.1}}]}
        default: [{id: d, action: output, values: {discount: 0}}]
""")
    )
    assert (await engine.run_flow("f", {"x": {"tier": "gold"}})).outputs == {"discount": Decimal("0.2")}
    assert (await engine.run_flow("f", {"x": {"tier": Decimal("1.0")}})).outputs == {"discount": Decimal("0.1")}
    assert (await engine.run_flow("f", {"x": {"tier": True}})).outputs == {"discount": 0}
    assert (await engine.run_flow("f", {"x": {"tier": "tin"}})).outputs == {"discount": 0}


async def test_foreach_binds_item_and_index_and_keys_nested_step_runs(engine_for):
    engine = engine_for(
        flow(
            """
      - id: lines
        action: foreach
        items: "=inputs.x.lines"
        steps:
          - {id: line, action: save, entity: Line, data: {id: "=string(index)", sku: "=item"}}
""",
        )
    )
    run = await engine.run_flow("f", {"x": {"lines": ["a", "b"]}})
    assert run.status is RunStatus.SUCCEEDED
    assert [s.key for s in run.steps] == ["lines[0].line", "lines[1].line", "lines"]
    assert run.steps[-1].output == {"count": 2}
    assert entities(engine, "Line") == {"0": {"id": "0", "sku": "a"}, "1": {"id": "1", "sku": "b"}}


async def test_foreach_refuses_what_is_not_a_list_and_lists_over_max_items(engine_for):
    engine = engine_for(
        flow(
            '      - {id: l, action: foreach, items: "=inputs.x.v", max_items: 2, steps: [{id: s, action: log, message: x}]}'
        )
    )
    assert "items must be a list, got object" in ((await engine.run_flow("f", {"x": {"v": {}}})).error or "")
    assert "foreach got 3 items; at most 2" in ((await engine.run_flow("f", {"x": {"v": [1, 2, 3]}})).error or "")


async def test_save_creates_or_replaces_and_generates_missing_ids(engine_for):
    engine = engine_for(
        flow("""
      - {id: a, action: save, entity: T, data: {id: t1, v: 1, w: 1}}
      - {id: b, action: save, entity: T, data: {id: t1, v: 2}}
      - {id: c, action: save, entity: T, data: {v: 3}}
""")
    )
    run = await engine.run_flow("f", {})
    stored = entities(engine, "T")
    assert stored["t1"] == {"id": "t1", "v": 2}
    generated = run.steps[2].output["id"]
    assert stored[generated] == {"v": 3, "id": generated} and len(generated) == 36


async def test_upsert_merges_by_the_key_field_of_the_target(engine_for):
    engine = engine_for("""
        targets: [{name: crm, type: store, keys: {company: domain}}]
        flows:
          - name: f
            inputs: {x: {type: Object}}
            steps:
              - {id: u, action: upsert, target: crm, entity: company, data: "=inputs.x"}
    """)
    await engine.run_flow("f", {"x": {"domain": "a.example", "name": "A", "size": 1}})
    await engine.run_flow("f", {"x": {"domain": "a.example", "size": 2}})
    assert entities(engine, "company") == {"a.example": {"domain": "a.example", "name": "A", "size": 2}}
    run = await engine.run_flow("f", {"x": {"name": "no key"}})
    assert "upsert of 'company' needs its key field 'domain' in data; data has: name" in (run.error or "")


async def test_update_merges_into_an_existing_record_only(engine_for):
    engine = engine_for(flow('      - {id: u, action: update, entity: T, record_id: "=inputs.x.id", data: {v: 2}}'))
    await seed_entities(engine, {"T": [{"id": "t1", "v": 1, "w": 1}]})
    assert (await engine.run_flow("f", {"x": {"id": "t1"}})).status is RunStatus.SUCCEEDED
    assert entities(engine, "T")["t1"] == {"id": "t1", "v": 2, "w": 1}
    run = await engine.run_flow("f", {"x": {"id": "t2"}})
    assert "no 'T' record with key 't2' to update" in (run.error or "")


async def test_get_returns_the_record_or_null_and_required_fails(engine_for):
    engine = engine_for(
        flow("""
      - {id: maybe, action: get, entity: T, record_id: "=inputs.x.id"}
      - {id: o, action: output, values: {found: "=steps.maybe != null"}}
      - {id: must, action: get, entity: T, record_id: "=inputs.x.id", required: true}
""")
    )
    await seed_entities(engine, {"T": [{"id": "t1"}]})
    assert (await engine.run_flow("f", {"x": {"id": "t1"}})).outputs == {"found": True}
    run = await engine.run_flow("f", {"x": {"id": "zz"}})
    assert run.status is RunStatus.FAILED and "no 'T' record with key 'zz'" in (run.error or "")
    assert run.steps[1].output == {"found": False}


async def test_delete_removes_and_says_whether_it_existed(engine_for):
    engine = engine_for(flow('      - {id: d, action: delete, entity: T, record_id: "=inputs.x.id"}'))
    await seed_entities(engine, {"T": [{"id": "t1"}]})
    assert (await engine.run_flow("f", {"x": {"id": "t1"}})).steps[0].output == {"deleted": True}
    assert (await engine.run_flow("f", {"x": {"id": "t1"}})).steps[0].output == {"deleted": False}
    assert entities(engine, "T") == {}


async def test_entity_keys_must_be_strings_or_integers(engine_for):
    engine = engine_for(flow('      - {id: g, action: get, entity: T, record_id: "=inputs.x.id"}'))
    run = await engine.run_flow("f", {"x": {"id": [1]}})
    assert "record_id must be a non-empty string or an integer, got list" in (run.error or "")


async def test_log_records_its_message(engine_for, caplog):
    engine = engine_for(flow("      - {id: l, action: log, level: warning, message: \"='hello ' + inputs.x.name\"}"))
    with caplog.at_level("INFO", logger="flowbus.flow"):
        run = await engine.run_flow("f", {"x": {"name": "ada"}})
    assert run.steps[0].output == "hello ada"
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [("WARNING", "hello ada")]


async def test_fail_fails_the_run_with_its_message_and_rolls_back(engine_for):
    engine = engine_for(
        flow("""
      - {id: s, action: save, entity: T, data: {id: t1}}
      - {id: f, action: fail, message: "=\'cannot: \' + inputs.x.why"}
""")
    )
    run = await engine.run_flow("f", {"x": {"why": "closed"}})
    assert (run.status, run.error) == (RunStatus.FAILED, "step 'f' (fail): cannot: closed")
    assert entities(engine, "T") == {}


async def test_call_runs_a_logic_flow_and_returns_its_outputs(engine_for):
    engine = engine_for("""
        flows:
          - name: main
            inputs: {n: {type: Integer}}
            steps:
              - {id: twice, action: call, flow: double, inputs: {n: "=inputs.n"}}
              - {id: o, action: output, values: {result: "=steps.twice.n"}}
          - name: double
            inputs: {n: {type: Integer, required: true}}
            steps: [{id: o, action: output, values: {n: "=inputs.n * 2"}}]
    """)
    run = await engine.run_flow("main", {"n": 21})
    assert run.outputs == {"result": 42}
    [child] = await engine.backend.child_runs(run.id)
    assert (child.flow, child.parent_run_id, child.trigger.value) == ("double", run.id, "call")


async def test_a_failing_called_flow_fails_the_caller(engine_for):
    engine = engine_for("""
        flows:
          - {name: main, steps: [{id: c, action: call, flow: bad}]}
          - {name: bad, steps: [{id: f, action: fail, message: nope}]}
    """)
    run = await engine.run_flow("main", {})
    assert run.status is RunStatus.FAILED and "called flow 'bad' failed: step 'f' (fail): nope" in (run.error or "")


async def test_custom_actions_get_evaluated_params_and_their_output_is_kept(engine_for):
    engine = engine_for(
        flow("""
      - {id: price, action: quote, with: {sku: "=inputs.x.sku", qty: 3}}
      - {id: o, action: output, values: {total: "=steps.price.total"}}
""")
    )

    async def quote(ctx, params):
        return {"total": Decimal("2.50") * params["with"]["qty"], "key": ctx.idempotency_key}

    engine.register_action("quote", quote)
    run = await engine.run_flow("f", {"x": {"sku": "a"}})
    assert run.outputs == {"total": Decimal("7.50")}
    assert run.steps[0].input == {"with": {"sku": "a", "qty": 3}}
    assert run.steps[0].output["key"] == f"{run.id}:price"


async def test_a_custom_action_raising_any_exception_fails_the_step_not_the_engine(engine_for):
    engine = engine_for(flow("      - {id: c, action: explode}"))

    async def explode(ctx, params):
        raise ValueError("bad day")

    engine.register_action("explode", explode)
    run = await engine.run_flow("f", {})
    assert (run.status, run.error) == (RunStatus.FAILED, "step 'c' (explode): ValueError: bad day")


async def test_an_unregistered_action_fails_the_run_with_near_names(engine_for):
    engine = engine_for(flow("      - {id: c, action: qoute}"))

    async def quote(ctx, params):
        return None

    engine.register_action("quote", quote)
    run = await engine.run_flow("f", {})
    assert "no action 'qoute' is registered (use Engine.register_action); did you mean: quote?" in (run.error or "")


def test_builtin_actions_cannot_be_replaced(engine_for):
    engine = engine_for(flow("      - {id: c, action: log, message: x}"))

    async def fake(ctx, params):
        return None

    with pytest.raises(FlowbusError, match="'save' is a built-in action"):
        engine.register_action("save", fake)


async def test_a_missing_path_fails_the_step_naming_the_path(engine_for):
    engine = engine_for("""
        flows:
          - {name: t, source: s, event_type: e, steps: [{id: a, action: save, entity: T, data: "$.payload"}]}
    """)
    [run] = await engine.handle("s", "e", {"other": 1})
    assert run.error == "step 'a' (save): $.payload matched nothing in data"


async def test_every_step_run_records_input_output_status_and_duration(engine_for):
    engine = engine_for(flow('      - {id: s, action: save, entity: T, data: {id: "=inputs.x.id"}}'))
    run = await engine.run_flow("f", {"x": {"id": "t1"}})
    [step] = run.steps
    assert (step.key, step.action, step.status) == ("s", "save", StepStatus.SUCCEEDED)
    assert step.input == {"data": {"id": "t1"}} and step.output == {"id": "t1"}
    assert step.duration_s >= 0 and run.duration_s >= step.duration_s


async def test_a_rejection_in_a_called_flow_rejects_the_caller(engine_for):
    engine = engine_for("""
        flows:
          - {name: main, steps: [{id: c, action: call, flow: picky}]}
          - {name: picky, steps: [{id: v, action: validate, rules: [{check: "=false", message: not today}]}]}
    """)
    run = await engine.run_flow("main", {})
    assert (run.status, run.error) == (RunStatus.REJECTED, "called flow 'picky' rejected: not today")


async def test_switch_matches_lists_read_from_data(engine_for):
    engine = engine_for(
        flow("""
      - id: s
        action: switch
        value: "=inputs.x.pair"
        cases: [{equals: [1, 2], steps: [{id: o, action: output, values: {hit: true}}]}]
""")
    )
    assert (await engine.run_flow("f", {"x": {"pair": [1, 2]}})).outputs == {"hit": True}
