"""Every config validator, each shown failing with its FILE:LINE: field: message."""

from __future__ import annotations

import textwrap

import pytest

from flowbus.config import ConfigError, Severity, load_config_text
from flowbus.config.plan import EntityKey
from flowbus.publishing import manifest_of


def load(text: str):
    return load_config_text(textwrap.dedent(text), file="f.yaml")


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(text)
    return [str(i) for i in info.value.issues if i.severity is Severity.ERROR]


ORDER_EVENT = """
events:
  - name: OrderPlaced
    properties:
      OrderId: {type: EntityReference, entity: Order, required: true}
      Total: {type: Money, required: true}
      Note: {type: String}
"""


def test_the_design_example_loads_as_written():
    loaded = load("""
        flows:
          - name: compass_company_upsert
            source: compass_inbound
            event_type: upsert_company
            event_type_from: "$.event"
            steps:
              - {id: upsert_hubspot, action: upsert, target: hubspot, entity: company, key: domain, data: "$.payload"}
    """)
    flow = loaded.config.flows[0]
    assert (flow.source, flow.event_type, flow.event_type_from, flow.enabled) == (
        "compass_inbound",
        "upsert_company",
        "$.event",
        True,
    )
    assert loaded.plan.type_paths["compass_inbound"].source == "$.event"
    assert [f.name for f in loaded.plan.routes[("compass_inbound", "upsert_company")]] == ["compass_company_upsert"]


def test_duplicate_step_ids_name_the_flow_and_the_id():
    found = errors("""
        flows:
          - name: f
            source: s
            event_type: t
            steps:
              - {id: a, action: log, message: one}
              - {id: a, action: log, message: two}
    """)
    assert found == [
        "f.yaml:8: flows[0].steps[1].id: step ids within a flow must be unique: "
        "flow 'f' uses id 'a' again (first at line 7)"
    ]


def test_nested_step_ids_share_the_flow_namespace():
    found = errors("""
        flows:
          - name: f
            inputs: {xs: {type: List}}
            steps:
              - {id: a, action: log, message: one}
              - id: loop
                action: foreach
                items: "=inputs.xs"
                steps:
                  - {id: a, action: log, message: two}
    """)
    assert len(found) == 1 and "step ids within a flow must be unique" in found[0]
    assert found[0].startswith("f.yaml:11: flows[0].steps[1].steps[0].id:")


def test_unknown_fields_are_errors_at_their_line():
    found = errors("""
        flows:
          - name: f
            source: s
            event_type: t
            stpes: []
    """)
    assert "f.yaml:6: flows[0].stpes: unknown field 'stpes'" in found
    assert "f.yaml:3: flows[0].steps: required field is missing" in found


def test_every_error_is_reported_not_just_the_first():
    found = errors("""
        handlers:
          - {name: h1, event: Nope, flow: Missing}
          - {name: h2, event: Nope, flow: Missing}
    """)
    assert len(found) == 4


def test_a_trigger_flow_needs_both_source_and_event_type():
    found = errors("""
        flows:
          - name: f
            source: s
            steps: [{id: a, action: log, message: hi}]
    """)
    assert found == [
        "f.yaml:3: flows[0].event_type: a trigger flow needs both `source` and `event_type`; event_type is missing"
    ]


def test_a_flow_source_must_be_declared_when_sources_are_listed():
    found = errors("""
        sources: [{name: storefront}]
        flows:
          - {name: f, source: storefrnt, event_type: t, steps: [{id: a, action: log, message: hi}]}
    """)
    assert found == ["f.yaml:4: flows[0].source: no source named 'storefrnt'; did you mean 'storefront'?"]


def test_one_source_has_one_event_type_path():
    found = errors("""
        sources: [{name: s, event_type_from: "$.kind"}]
        flows:
          - {name: f, source: s, event_type: t, event_type_from: "$.type", steps: [{id: a, action: log, message: hi}]}
    """)
    assert len(found) == 1 and "already takes its event type from '$.kind' (line 2)" in found[0]


def test_event_type_from_must_be_a_jsonpath():
    found = errors("""
        sources: [{name: s, event_type_from: "$.kind["}]
    """)
    assert len(found) == 1 and found[0].startswith("f.yaml:2: sources[0].event_type_from:")


def test_a_trigger_flow_takes_no_inputs():
    found = errors("""
        flows:
          - {name: f, source: s, event_type: t, inputs: {x: {type: String}}, steps: [{id: a, action: log, message: hi}]}
    """)
    assert found == [
        "f.yaml:3: flows[0].inputs: a trigger flow takes its data from the message; `inputs` belong to logic flows"
    ]


def test_names_are_unique_per_kind():
    found = errors(
        ORDER_EVENT
        + """
  - name: OrderPlaced
"""
    )
    assert found == ["f.yaml:9: events[1].name: event names must be unique: 'OrderPlaced' is already defined at line 3"]


def test_handler_event_and_flow_must_resolve_with_suggestions():
    found = errors(
        ORDER_EVENT
        + """
flows:
  - {name: Ship, inputs: {OrderId: {type: EntityReference, entity: Order}}, steps: [{id: a, action: log, message: hi}]}
handlers:
  - {name: h, event: OrderPlace, flow: Shp}
"""
    )
    assert "f.yaml:12: handlers[0].event: no event named 'OrderPlace'; did you mean 'OrderPlaced'?" in found
    assert "f.yaml:12: handlers[0].flow: no flow named 'Shp'; did you mean 'Ship'?" in found


def test_a_handler_runs_a_logic_flow_not_a_trigger_flow():
    found = errors(
        ORDER_EVENT
        + """
flows:
  - {name: T, source: s, event_type: t, steps: [{id: a, action: log, message: hi}]}
handlers:
  - {name: h, event: OrderPlaced, flow: T}
"""
    )
    assert any("is a trigger flow; a handler runs a logic flow" in e for e in found)


def test_bindings_name_real_properties_and_inputs():
    found = errors(
        ORDER_EVENT
        + """
flows:
  - {name: Ship, inputs: {OrderId: {type: EntityReference, entity: Order}}, steps: [{id: a, action: log, message: hi}]}
handlers:
  - {name: h, event: OrderPlaced, flow: Ship, bindings: {OrderID: OrderId, Total: Amount}}
"""
    )
    assert any(
        "handlers[0].bindings.OrderID: event 'OrderPlaced' has no property named 'OrderID'; did you mean 'OrderId'?"
        in e
        for e in found
    )
    assert any("handlers[0].bindings.Total: flow 'Ship' has no input named 'Amount'" in e for e in found)


def test_bindings_need_compatible_types():
    found = errors(
        ORDER_EVENT
        + """
flows:
  - {name: Ship, inputs: {Count: {type: Integer}, Ref: {type: EntityReference, entity: Customer}}, steps: [{id: a, action: log, message: hi}]}
handlers:
  - {name: h, event: OrderPlaced, flow: Ship, bindings: {Total: Count, OrderId: Ref}}
"""
    )
    assert (
        "f.yaml:12: handlers[0].bindings.Total: property 'Total' is Money but input 'Count' of flow 'Ship' is Integer"
        in found
    )
    assert (
        "f.yaml:12: handlers[0].bindings.OrderId: property 'OrderId' refers to Order but input 'Ref' refers to Customer"
        in found
    )


def test_widening_bindings_are_accepted():
    loaded = load(
        ORDER_EVENT
        + """
flows:
  - {name: Ship, inputs: {Amount: {type: Decimal}, Ref: {type: String}}, steps: [{id: a, action: log, message: hi}]}
handlers:
  - {name: h, event: OrderPlaced, flow: Ship, bindings: {Total: Amount, OrderId: Ref}}
"""
    )
    assert loaded.plan.handlers["h"].bindings == (("Total", "Amount"), ("OrderId", "Ref"))


def test_required_inputs_must_be_bound():
    found = errors(
        ORDER_EVENT
        + """
flows:
  - {name: Ship, inputs: {OrderId: {type: EntityReference, entity: Order, required: true}}, steps: [{id: a, action: log, message: hi}]}
handlers:
  - {name: h, event: OrderPlaced, flow: Ship}
"""
    )
    assert found == [
        "f.yaml:12: handlers[0].bindings: required input 'OrderId' of flow 'Ship' is not bound "
        "(event 'OrderPlaced' has a property of that name: bind it with `OrderId: OrderId`)"
    ]


def test_an_optional_property_bound_to_a_required_input_is_a_warning():
    loaded = load(
        ORDER_EVENT
        + """
flows:
  - {name: Ship, inputs: {Note: {type: String, required: true}}, steps: [{id: a, action: log, message: hi}]}
handlers:
  - {name: h, event: OrderPlaced, flow: Ship, bindings: {Note: Note}}
"""
    )
    assert [w.severity for w in loaded.warnings] == [Severity.WARNING]
    assert "optional property 'Note' is bound to required input 'Note'" in str(loaded.warnings[0])


def test_publish_steps_name_a_defined_event_and_its_properties():
    found = errors(
        ORDER_EVENT
        + """
flows:
  - name: f
    source: s
    event_type: t
    steps:
      - {id: p, action: publish, event: OrderPlaced, properties: {OrderId: "$.id", Totl: 1}}
      - {id: q, action: publish, event: OrderShipped}
"""
    )
    assert (
        "f.yaml:14: flows[0].steps[0].properties.Totl: event 'OrderPlaced' has no property 'Totl'; did you mean 'Total'?"
        in found
    )
    assert "f.yaml:14: flows[0].steps[0].properties: event 'OrderPlaced' requires 'Total', which is not given" in found
    assert any(e.startswith("f.yaml:15: flows[0].steps[1].event: no event named 'OrderShipped'") for e in found)


def test_call_steps_name_a_logic_flow_and_bind_its_required_inputs():
    found = errors("""
        flows:
          - name: main
            source: s
            event_type: t
            steps:
              - {id: c, action: call, flow: helper, inputs: {x: 1, y: 2}}
              - {id: d, action: call, flow: main}
          - name: helper
            inputs: {x: {type: Integer}, z: {type: Integer, required: true}}
            steps: [{id: a, action: log, message: hi}]
    """)
    assert "f.yaml:7: flows[0].steps[0].inputs.y: flow 'helper' has no input 'y'; it has: x, z" in found
    assert "f.yaml:7: flows[0].steps[0].inputs: flow 'helper' requires 'z', which is not given" in found
    assert "f.yaml:8: flows[0].steps[1].flow: flow 'main' is a trigger flow; only logic flows can be called" in found


def test_entity_steps_need_a_store_target_and_http_steps_an_http_target():
    found = errors("""
        targets:
          - {name: crm, type: http, base_url: "https://crm.example"}
          - {name: db, type: store}
        flows:
          - name: f
            source: s
            event_type: t
            steps:
              - {id: a, action: save, target: crm, entity: x, data: {}}
              - {id: b, action: http, target: db}
              - {id: c, action: get, target: nowhere, entity: x, record_id: "1"}
    """)
    assert "f.yaml:10: flows[0].steps[0].target: save needs a target of type store; 'crm' is an http target" in found
    assert "f.yaml:11: flows[0].steps[1].target: http needs a target of type http; 'db' is a store target" in found
    assert any(e.startswith("f.yaml:12: flows[0].steps[2].target: no target named 'nowhere'") for e in found)


def test_the_name_store_is_reserved_for_the_entity_store():
    found = errors("""
        targets: [{name: store, type: http, base_url: "http://x"}]
    """)
    assert found == [
        "f.yaml:2: targets[0].type: the name 'store' is the built-in entity store; it must have type store"
    ]


def test_a_sync_handler_cycle_is_an_error():
    found = errors("""
        events:
          - {name: Ping, properties: {n: {type: Integer}}}
        flows:
          - name: Echo
            inputs: {n: {type: Integer}}
            steps: [{id: p, action: publish, event: Ping, properties: {n: "=inputs.n"}}]
        handlers:
          - {name: h, event: Ping, flow: Echo, mode: sync, bindings: {n: n}}
    """)
    assert found == [
        "f.yaml:5: flows[0]: sync cycle: Echo -> Echo; it would never end (make a handler async or break the chain)"
    ]


def test_a_call_cycle_is_an_error():
    found = errors("""
        flows:
          - {name: a, steps: [{id: x, action: call, flow: b}]}
          - {name: b, steps: [{id: y, action: call, flow: a}]}
    """)
    assert len(found) == 1 and "sync cycle: a -> b -> a" in found[0]


def test_an_async_handler_cycle_is_a_warning():
    loaded = load("""
        events:
          - {name: Ping, properties: {n: {type: Integer}}}
        flows:
          - name: Echo
            inputs: {n: {type: Integer}}
            steps: [{id: p, action: publish, event: Ping, properties: {n: "=inputs.n"}}]
        handlers:
          - {name: h, event: Ping, flow: Echo, mode: async, bindings: {n: n}}
    """)
    assert [str(w) for w in loaded.warnings] == [
        "f.yaml:5: flows[0]: warning: async cycle: Echo -> Echo; it runs until the event chain depth limit stops it"
    ]


def test_an_expression_that_does_not_compile_is_an_error_at_its_line():
    found = errors("""
        flows:
          - name: f
            source: s
            event_type: t
            steps:
              - id: a
                action: set
                vars:
                  x: "=data.a = 1"
    """)
    assert len(found) == 1
    assert found[0].startswith("f.yaml:10: flows[0].steps[0].vars.x: ")
    assert "==" in found[0]


def test_a_jsonpath_that_does_not_compile_is_an_error_at_its_line():
    found = errors("""
        flows:
          - name: f
            source: s
            event_type: t
            steps:
              - {id: a, action: upsert, entity: e, data: "$.payload["}
    """)
    assert len(found) == 1 and found[0].startswith("f.yaml:7: flows[0].steps[0].data: ")


def test_an_expression_naming_an_unknown_variable_is_an_error():
    found = errors("""
        flows:
          - name: f
            source: s
            event_type: t
            steps:
              - {id: a, action: log, message: "=payload.x"}
    """)
    assert len(found) == 1 and "payload" in found[0] and found[0].startswith("f.yaml:7:")


def test_rule_checks_and_messages_compile_at_their_line():
    found = errors("""
        flows:
          - name: f
            source: s
            event_type: t
            steps:
              - id: v
                action: validate
                rules:
                  - {check: "=true", message: fine}
                  - check: "=(1"
                    message: bad
    """)
    assert len(found) == 1 and found[0].startswith("f.yaml:11: flows[0].steps[0].rules[1].check: ")


def test_property_type_options_are_checked():
    found = errors("""
        events:
          - name: E
            properties:
              a: {type: EntityReference}
              b: {type: String, entity: Order}
              c: {type: Strng}
    """)
    assert (
        "f.yaml:5: events[0].properties.a: an EntityReference property needs `entity`: the entity it refers to" in found
    )
    assert "f.yaml:6: events[0].properties.b: `entity` applies only to EntityReference properties" in found
    assert any(e.startswith("f.yaml:7: events[0].properties.c.type: must be 'String', 'Integer'") for e in found)


def test_names_must_be_identifiers():
    found = errors("""
        flows:
          - {name: "my flow", source: s, event_type: t, steps: [{id: "1st", action: log, message: hi}]}
    """)
    assert (
        "f.yaml:3: flows[0].name: 'my flow' is not a valid name (letters, digits, _, . and -, starting with a letter or _)"
        in found
    )
    assert (
        "f.yaml:3: flows[0].steps[0].id: '1st' is not a valid identifier (letters, digits and _, starting with a letter or _)"
        in found
    )


def test_disabled_flows_are_not_routed():
    loaded = load("""
        flows:
          - {name: live, source: s, event_type: t, steps: [{id: a, action: log, message: hi}]}
          - {name: paused, source: s, event_type: t, enabled: false, steps: [{id: a, action: log, message: hi}]}
    """)
    assert [f.name for f in loaded.plan.routes[("s", "t")]] == ["live"]


def test_a_misspelt_action_suggests_the_built_in_one():
    found = errors("""
        flows:
          - {name: f, source: s, event_type: t, steps: [{id: a, action: sav, entity: x, data: {}}]}
    """)
    assert found == [
        "f.yaml:3: flows[0].steps[0]: 'sav' is not a built-in action; did you mean 'save'? "
        "a custom action takes its parameters under `with`, not as 'data', 'entity'"
    ]


def test_an_input_default_must_fit_its_type():
    found = errors("""
        flows:
          - name: f
            inputs: {n: {type: Integer, default: abc}}
            steps: [{id: a, action: log, message: x}]
    """)
    assert found == [
        "f.yaml:4: flows[0].inputs.n.default: default does not fit the input: Input should be a valid integer"
    ]


def test_a_required_input_with_a_default_need_not_be_bound():
    loaded = load(
        ORDER_EVENT
        + """
flows:
  - {name: Ship, inputs: {Express: {type: Boolean, required: true, default: false}}, steps: [{id: a, action: log, message: hi}]}
handlers:
  - {name: h, event: OrderPlaced, flow: Ship}
"""
    )
    assert loaded.plan.flows["Ship"].required_inputs == frozenset()
    assert loaded.plan.flows["Ship"].input_defaults == {"Express": False}


def test_a_bad_mapping_key_is_named_without_pydantic_markers():
    found = errors("""
        events: [{name: E, properties: {h-x: {type: String}}}]
    """)
    assert found == [
        "f.yaml:2: events[0].properties.h-x: 'h-x' is not a valid identifier (letters, digits and _, starting with a letter or _)"
    ]


def test_a_base_url_must_be_http():
    found = errors("""
        targets: [{name: t, type: http, base_url: "ftp://x"}]
    """)
    assert found == ["f.yaml:2: targets[0].base_url: 'ftp://x' is not an http:// or https:// URL"]


def test_a_flow_nothing_runs_is_a_warning_naming_it_at_its_line():
    loaded = load("""
        flows:
          - name: forgotten
            steps: [{id: a, action: log, message: hi}]
          - name: called
            inputs: {n: {type: Integer}}
            steps: [{id: a, action: log, message: hi}]
          - name: caller
            source: s
            event_type: t
            steps: [{id: c, action: call, flow: called, inputs: {n: 1}}]
    """)
    assert [str(w) for w in loaded.warnings] == [
        "f.yaml:3: flows[0].name: warning: flow 'forgotten' never runs: it has no `source`/`event_type`, "
        "no handler runs it and no `call` step or schedule runs it (a flow run from Python by Engine.run_flow "
        "gives its result with an `output` step)"
    ]


def test_a_flow_run_by_a_handler_or_giving_outputs_to_a_python_caller_is_not_warned_about():
    loaded = load(
        ORDER_EVENT
        + """
flows:
  - {name: handled, inputs: {Total: {type: Money}}, steps: [{id: a, action: log, message: hi}]}
  - {name: entry, steps: [{id: o, action: output, values: {ok: true}}]}
handlers:
  - {name: h, event: OrderPlaced, flow: handled, bindings: {Total: Total}}
"""
    )
    assert loaded.warnings == ()


@pytest.mark.parametrize(
    ("targets", "fix"),
    [
        ("targets: [{name: hubspot, type: store}]", "add `keys: {company: id}` under target 'hubspot'"),
        (
            "targets: [{name: hubspot, type: store, keys: {person: email}}]",
            "add `company: id` under the `keys:` of target 'hubspot'",
        ),
        # the flow-only example of the config reference, before it named its key: the target is implied
        ("", "declare it: `targets: [{name: hubspot, type: store, keys: {company: id}}]`"),
    ],
)
def test_an_upsert_on_an_entity_its_target_has_no_key_for_is_an_error_showing_the_keys_line_to_add(targets, fix):
    upsert = '{id: upsert_hubspot, action: upsert, target: hubspot, entity: company, data: "$.payload"}'
    found = errors(f"""
{targets}
flows:
  - {{name: compass_company_upsert, source: compass_inbound, event_type: upsert_company, steps: [{upsert}]}}
""")
    assert found == [
        "f.yaml:4: flows[0].steps[0].entity: target 'hubspot' has no key for 'company', so the upsert cannot tell "
        f"which record its data is; {fix}, with the field that identifies a company record in place of 'id' "
        "(or give this step `key:`)"
    ]


def test_an_upsert_keyed_by_the_step_the_target_or_a_visible_id_field_loads():
    loaded = load("""
        targets:
          - {name: crm, type: store, keys: {company: domain}}
        flows:
          - name: f
            source: s
            event_type: t
            steps:
              - {id: by_target, action: upsert, target: crm, entity: company, data: "$.payload"}
              - {id: by_step, action: upsert, target: crm, entity: person, key: email, data: "$.person"}
              - {id: by_id, action: upsert, entity: Counter, data: {id: total, n: 1}}
    """)
    keys = [step.extra_as(EntityKey).field for step in loaded.plan.flows["f"].steps]
    assert keys == ["domain", "email", "id"]


# -- event versions: each (name, version) once; handlers and publish steps resolve to one version

TWO_VERSIONS = """
events:
  - name: OrderPlaced
    properties:
      OrderId: {type: String, required: true}
  - name: OrderPlaced
    version: 2
    properties:
      OrderId: {type: String, required: true}
      Channel: {type: String, required: true}
flows:
  - name: logic
    inputs: {OrderId: {type: String, required: true}, Channel: {type: String}}
    steps: [{id: a, action: log, message: hi}]
"""


def test_two_versions_of_one_event_load_side_by_side_and_the_latest_is_the_default():
    loaded = load(TWO_VERSIONS)
    assert sorted(loaded.plan.versions) == [("OrderPlaced", 1), ("OrderPlaced", 2)]
    assert loaded.plan.events["OrderPlaced"].definition.version == 2


def test_the_latest_version_is_the_highest_whatever_the_order_of_definition():
    reordered = TWO_VERSIONS.replace(
        "  - name: OrderPlaced\n    properties:", "  - name: OrderPlaced\n    version: 3\n    properties:", 1
    )
    assert load(reordered).plan.events["OrderPlaced"].definition.version == 3


def test_a_version_defined_twice_names_the_version_and_the_first_line():
    text = TWO_VERSIONS.replace("flows:", "  - {name: OrderPlaced, version: 2}\nflows:")
    assert errors(text) == [
        "f.yaml:11: events[2].name: event versions must be unique: 'OrderPlaced' version 2 is already defined at line 6"
    ]


def test_a_handler_listens_to_the_latest_version_unless_it_names_one():
    loaded = load(
        TWO_VERSIONS
        + """
handlers:
  - {name: latest, event: OrderPlaced, flow: logic, bindings: {OrderId: OrderId, Channel: Channel}}
  - {name: pinned, event: OrderPlaced, event_version: 1, flow: logic, bindings: {OrderId: OrderId}}
"""
    )
    assert [h.name for h in loaded.plan.versions[("OrderPlaced", 2)].subscribers.async_] == ["latest"]
    assert [h.name for h in loaded.plan.versions[("OrderPlaced", 1)].subscribers.async_] == ["pinned"]


def test_a_handler_binds_the_properties_of_the_version_it_listens_to():
    found = errors(
        TWO_VERSIONS
        + """
handlers:
  - {name: pinned, event: OrderPlaced, event_version: 1, flow: logic, bindings: {OrderId: OrderId, Channel: Channel}}
"""
    )
    assert found == [
        "f.yaml:17: handlers[0].bindings.Channel: event 'OrderPlaced v1' has no property named 'Channel'; "
        "defined: OrderId"
    ]


def test_a_handler_naming_a_version_the_event_does_not_have_is_an_error():
    found = errors(
        TWO_VERSIONS
        + """
handlers:
  - {name: h, event: OrderPlaced, event_version: 3, flow: logic, bindings: {OrderId: OrderId}}
"""
    )
    assert found == ["f.yaml:17: handlers[0].event_version: event 'OrderPlaced' has no version 3; defined: 1, 2"]


def test_a_publish_step_gives_the_properties_of_the_version_it_publishes():
    found = errors(
        TWO_VERSIONS
        + """
  - name: publisher
    inputs: {x: {type: String}}
    steps:
      - {id: latest, action: publish, event: OrderPlaced, properties: {OrderId: a}}
      - {id: old, action: publish, event: OrderPlaced, event_version: 1, properties: {OrderId: a, Channel: b}}
      - {id: none, action: publish, event: OrderPlaced, event_version: 5, properties: {OrderId: a}}
"""
    )
    assert found == [
        "f.yaml:19: flows[1].steps[0].properties: event 'OrderPlaced v2' requires 'Channel', which is not given",
        "f.yaml:20: flows[1].steps[1].properties.Channel: event 'OrderPlaced v1' has no property 'Channel'; "
        "it has: OrderId",
        "f.yaml:21: flows[1].steps[2].event_version: event 'OrderPlaced' has no version 5; defined: 1, 2",
    ]


def test_a_publish_reaches_only_the_handlers_of_its_version_in_the_cycle_check():
    # logic publishes v1; the sync handler that runs logic again listens to v2: no cycle
    loaded = load(
        TWO_VERSIONS.replace(
            "steps: [{id: a, action: log, message: hi}]",
            "steps: [{id: a, action: publish, event: OrderPlaced, event_version: 1, properties: {OrderId: x}}]",
        )
        + """
handlers:
  - {name: h, event: OrderPlaced, flow: logic, mode: sync, bindings: {OrderId: OrderId, Channel: Channel}}
"""
    )
    assert loaded.warnings == ()


def test_the_manifest_lists_handlers_under_each_version_of_an_event_with_several():
    loaded = load(
        TWO_VERSIONS
        + """
handlers:
  - {name: latest, event: OrderPlaced, flow: logic, mode: sync, bindings: {OrderId: OrderId, Channel: Channel}}
  - {name: pinned, event: OrderPlaced, event_version: 1, flow: logic, bindings: {OrderId: OrderId}}
"""
    )
    assert manifest_of(loaded).handlers == {
        "OrderPlaced v1": (("pinned", "async"),),
        "OrderPlaced v2": (("latest", "sync"),),
    }
