"""The structural diff of two config versions: items by name, steps by id, fields by dotted path."""

from __future__ import annotations

import json
import textwrap
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowbus.config import Config, load_config_text
from flowbus.config.diff import ChangeKind, ConfigDiff, ItemChange, StepChange, diff_configs


def load(text: str) -> Config:
    return load_config_text(textwrap.dedent(text), file="f.yaml").config


def diff(old: str, new: str) -> ConfigDiff:
    return diff_configs(load(old), load(new))


def step_changes(result: ConfigDiff) -> list[tuple[str, str, tuple[str, ...]]]:
    (change,) = result.changes
    return [(s.step_id, str(s.kind), s.fields) for s in change.steps]


SHOP = """
    project: {name: shop}
    sources:
      - {name: web}
    events:
      - name: OrderPlaced
        properties:
          OrderId: {type: String, required: true}
          Total: {type: Decimal}
    flows:
      - name: CreateOrder
        source: web
        event_type: order
        steps:
          - {id: order, action: save, entity: Order, data: "$.order"}
          - id: placed
            action: publish
            event: OrderPlaced
            properties: {OrderId: "$.order.id", Total: "$.order.total"}
      - name: ReserveStock
        inputs:
          OrderId: {type: String, required: true}
        steps:
          - {id: note, action: log, message: reserving}
    handlers:
      - {name: ReserveOnOrder, event: OrderPlaced, flow: ReserveStock, bindings: {OrderId: OrderId}}
"""


def flow(steps: str, *, name: str = "f") -> str:
    """A config with one trigger flow, its steps given as YAML indented under `steps:`."""
    return f"""
    sources:
      - {{name: web}}
    flows:
      - name: {name}
        source: web
        event_type: t
        steps:
{textwrap.indent(textwrap.dedent(steps), " " * 10)}
    """


def test_identical_configs_give_an_empty_diff():
    result = diff(SHOP, SHOP)
    assert result.empty
    assert result.changes == ()
    assert result.summary() == "no changes"
    assert result.lines() == []
    assert result.to_data() == {"summary": "no changes", "changes": []}


def test_a_field_written_out_at_its_default_is_no_change():
    explicit = SHOP.replace("bindings: {OrderId: OrderId}}", "mode: async, bindings: {OrderId: OrderId}}").replace(
        "event_type: order", "event_type: order\n        enabled: true"
    )
    explicit = explicit.replace("message: reserving}", "message: reserving, level: info}")
    assert explicit != SHOP
    assert diff(SHOP, explicit).empty


def test_a_changed_project_is_listed_under_its_new_name():
    result = diff("project: {name: shop}", "project: {name: store, description: Orders}")
    assert result.changes == (
        ItemChange(section="project", name="store", kind=ChangeKind.CHANGED, fields=("name", "description")),
    )


def test_sources_are_added_removed_and_changed_by_name():
    result = diff(
        "sources: [{name: web}, {name: ftp}]",
        "sources: [{name: web, event_type_from: $.type}, {name: mq}]",
    )
    assert [(c.section, c.name, c.kind, c.fields) for c in result.changes] == [
        ("sources", "web", ChangeKind.CHANGED, ("event_type_from",)),
        ("sources", "mq", ChangeKind.ADDED, ()),
        ("sources", "ftp", ChangeKind.REMOVED, ()),
    ]


def test_events_are_added_removed_and_changed_by_name():
    result = diff(
        """
        events:
          - {name: A, properties: {X: {type: String}}}
          - {name: B}
        """,
        """
        events:
          - {name: C}
          - {name: A, version: 2, properties: {X: {type: String}, Y: {type: Integer}}}
        """,
    )
    assert result.lines() == ["+ event C", "~ event A: version, properties.Y", "- event B"]


def test_an_event_property_type_change_names_the_property_and_its_type():
    old = "events: [{name: E, properties: {Total: {type: Decimal}}}]"
    new = "events: [{name: E, properties: {Total: {type: Money, scale: 2}}}]"
    (change,) = diff(old, new).changes
    assert change.fields == ("properties.Total.type", "properties.Total.scale")


def test_flows_are_added_removed_and_changed_by_name():
    old = flow("- {id: a, action: log, message: hi}", name="old")
    new = flow("- {id: a, action: log, message: hi}", name="new").replace("event_type: t", "event_type: u")
    assert diff(old, new).lines() == ["+ flow new", "- flow old"]
    retyped = flow("- {id: a, action: log, message: hi}", name="old").replace("event_type: t", "event_type: u")
    assert diff(old, retyped).lines() == ["~ flow old: event_type"]


def test_handlers_are_added_removed_and_changed_by_name():
    old = SHOP.replace(
        "handlers:\n",
        "handlers:\n      - {name: Old, event: OrderPlaced, flow: ReserveStock, bindings: {OrderId: OrderId}}\n",
    )
    new = SHOP.replace("bindings: {OrderId: OrderId}}", "mode: sync, bindings: {OrderId: OrderId}}").replace(
        "handlers:\n",
        "handlers:\n      - {name: Fresh, event: OrderPlaced, flow: ReserveStock, bindings: {OrderId: OrderId}}\n",
    )
    assert diff(old, new).lines() == ["+ handler Fresh", "~ handler ReserveOnOrder: mode", "- handler Old"]


def test_a_changed_handler_binding_names_the_event_property():
    def config(bindings: str) -> str:
        return f"""
            events: [{{name: E, properties: {{OrderId: {{type: String}}}}}}]
            flows:
              - name: F
                inputs: {{Id: {{type: String}}, Ref: {{type: String}}}}
                steps: [{{id: a, action: log, message: hi}}]
            handlers: [{{name: H, event: E, flow: F, bindings: {bindings}}}]
        """

    (change,) = diff(config("{OrderId: Id}"), config("{OrderId: Ref}")).changes
    assert (change.section, change.name, change.fields) == ("handlers", "H", ("bindings.OrderId",))


def test_targets_are_added_removed_and_changed_by_name():
    result = diff(
        """
        targets:
          - {name: crm, type: http, base_url: "https://crm.example"}
          - {name: store, type: store}
        """,
        """
        targets:
          - {name: crm, type: http, base_url: "https://crm.example/v2", timeout_s: 5}
          - {name: erp, type: http, base_url: "https://erp.example"}
        """,
    )
    assert result.lines() == ["~ target crm: base_url, timeout_s", "+ target erp", "- target store"]


def test_a_changed_step_names_its_changed_fields():
    archive = "targets: [{name: archive, type: store}]\n    sources:"
    old = flow("""
        - {id: order, action: save, entity: Order, data: {status: placed, total: 0}}
        - {id: note, action: log, message: hi}
    """).replace("sources:", archive)
    new = flow("""
        - {id: order, action: save, target: archive, entity: Order, data: {status: open, total: 0, paid: false}}
        - {id: note, action: log, message: hi}
    """).replace("sources:", archive)
    assert step_changes(diff(old, new)) == [("order", "changed", ("target", "data.status", "data.paid"))]


def test_a_step_whose_data_is_replaced_whole_is_changed_at_data():
    old = flow('- {id: order, action: save, entity: Order, data: "$.order"}')
    new = flow('- {id: order, action: save, entity: Order, data: "$.payload"}')
    assert step_changes(diff(old, new)) == [("order", "changed", ("data",))]


def test_added_and_removed_steps_are_listed_by_id():
    old = flow("""
        - {id: a, action: log, message: one}
        - {id: b, action: log, message: two}
    """)
    new = flow("""
        - {id: a, action: log, message: one}
        - {id: c, action: log, message: three}
    """)
    assert step_changes(diff(old, new)) == [("c", "added", ()), ("b", "removed", ())]
    assert diff(old, new).lines() == ["~ flow f: step c added; step b removed"]


def test_inserting_a_step_moves_no_other_step():
    old = flow("""
        - {id: a, action: log, message: one}
        - {id: b, action: log, message: two}
    """)
    new = flow("""
        - {id: first, action: log, message: zero}
        - {id: a, action: log, message: one}
        - {id: b, action: log, message: two}
    """)
    assert step_changes(diff(old, new)) == [("first", "added", ())]


def test_reordered_steps_mark_the_fewest_steps_moved():
    old = flow("""
        - {id: a, action: log, message: one}
        - {id: b, action: log, message: two}
        - {id: c, action: log, message: three}
        - {id: d, action: log, message: four}
    """)
    new = flow("""
        - {id: a, action: log, message: one}
        - {id: c, action: log, message: three}
        - {id: d, action: log, message: four}
        - {id: b, action: log, message: two}
    """)
    assert step_changes(diff(old, new)) == [("b", "moved", ())]


def test_a_step_moved_into_an_if_block_is_moved_and_its_parent_is_not_changed():
    old = flow("""
        - {id: check, action: if, condition: "=true", then: [{id: a, action: log, message: one}]}
        - {id: b, action: log, message: two}
    """)
    new = flow("""
        - id: check
          action: if
          condition: "=true"
          then:
            - {id: a, action: log, message: one}
            - {id: b, action: log, message: two}
    """)
    assert step_changes(diff(old, new)) == [("b", "moved", ())]
    assert diff(old, new).lines() == ["~ flow f: step b moved"]


def test_a_step_moved_to_another_branch_of_a_switch_is_moved():
    def switch(first: str, second: str) -> str:
        return flow(f"""
            - id: route
              action: switch
              value: "$.kind"
              cases:
                - {{equals: a, steps: [{first}]}}
              default: [{second}]
        """)

    one, two = "{id: one, action: log, message: one}", "{id: two, action: log, message: two}"
    assert step_changes(diff(switch(one, two), switch(two, one))) == [("two", "moved", ()), ("one", "moved", ())]


def test_a_nested_step_that_is_edited_and_moved_is_both_changed_and_moved():
    old = flow("""
        - id: each
          action: foreach
          items: "$.lines"
          steps:
            - {id: a, action: log, message: one}
            - {id: b, action: log, message: two}
    """)
    new = flow("""
        - id: each
          action: foreach
          items: "$.items"
          steps:
            - {id: b, action: log, message: two, level: debug}
            - {id: a, action: log, message: one}
    """)
    assert step_changes(diff(old, new)) == [
        ("each", "changed", ("items",)),
        ("b", "changed", ("level",)),
        ("a", "moved", ()),
    ]


def test_decimals_compare_by_their_exact_text_and_true_is_not_one():
    old = flow("- {id: s, action: set, vars: {price: 1.10, flag: 1}}")
    new = flow("- {id: s, action: set, vars: {price: 1.1, flag: true}}")
    assert step_changes(diff(old, new)) == [("s", "changed", ("vars.price", "vars.flag"))]
    assert diff(old, old).empty


def test_a_dict_key_that_appears_or_disappears_is_a_change_even_when_null():
    old = flow("- {id: s, action: set, vars: {a: null}}")
    new = flow("- {id: s, action: set, vars: {b: null}}")
    assert step_changes(diff(old, new)) == [("s", "changed", ("vars.b", "vars.a"))]


OLD_SHOP = (
    SHOP
    + """
      - {name: AuditCancel, event: OrderPlaced, flow: OldAudit}
    """
)
OLD_SHOP = OLD_SHOP.replace(
    "    handlers:",
    """      - name: OldAudit
        inputs: {OrderId: {type: String}}
        steps: [{id: log, action: log, message: audit}]
    handlers:""",
)
NEW_SHOP = (
    SHOP.replace("Total: {type: Decimal}", "Total: {type: Money}")
    .replace(
        'Total: "$.order.total"}', 'Total: "$.order.amount"}\n          - {id: audit, action: log, message: placed}'
    )
    .replace("bindings: {OrderId: OrderId}}", "mode: sync, bindings: {OrderId: OrderId}}")
    .replace(
        "    handlers:",
        """      - name: NotifyWarehouse
        inputs: {OrderId: {type: String}}
        steps: [{id: notify, action: log, message: notify}]
    handlers:""",
    )
    + """
      - {name: NotifyOnOrder, event: OrderPlaced, flow: NotifyWarehouse, bindings: {OrderId: OrderId}}
    """
)


def test_a_realistic_pair_reads_as_a_summary_and_as_lines():
    result = diff(OLD_SHOP, NEW_SHOP)
    assert result.summary() == (
        "events: 1 changed; flows: 1 added, 1 removed, 1 changed; handlers: 1 added, 1 removed, 1 changed"
    )
    assert result.lines() == [
        "~ event OrderPlaced: properties.Total.type",
        "~ flow CreateOrder: step placed changed (properties.Total); step audit added",
        "+ flow NotifyWarehouse",
        "- flow OldAudit",
        "~ handler ReserveOnOrder: mode",
        "+ handler NotifyOnOrder",
        "- handler AuditCancel",
    ]
    create_order = result.changes[1]
    assert create_order.steps == (
        StepChange(step_id="placed", kind=ChangeKind.CHANGED, fields=("properties.Total",)),
        StepChange(step_id="audit", kind=ChangeKind.ADDED),
    )


def test_to_data_is_plain_json():
    data = diff(OLD_SHOP, NEW_SHOP).to_data()
    assert json.loads(json.dumps(data)) == data
    assert data["changes"][1] == {
        "section": "flows",
        "name": "CreateOrder",
        "kind": "changed",
        "fields": [],
        "steps": [
            {"step_id": "placed", "kind": "changed", "fields": ["properties.Total"]},
            {"step_id": "audit", "kind": "added", "fields": []},
        ],
    }


# Random small configs. Items come in name order so that every difference in the dumps is one the
# diff reports: the diff matches items by name and does not report a change of item order.
NAMES = ("A", "B", "C")


@st.composite
def configs(draw: st.DrawFn) -> Config:
    flow_names = sorted(draw(st.sets(st.sampled_from(NAMES), min_size=1)))
    flows = [
        {
            "name": name,
            "description": draw(st.sampled_from(["", "about"])),
            "enabled": draw(st.booleans()),
            "inputs": {"X": {"type": draw(st.sampled_from(["String", "Integer"]))}},
            "steps": [
                {"id": step_id, "action": "log", "message": draw(st.sampled_from(["hi", "bye"]))}
                | draw(st.sampled_from([{}, {"level": "info"}, {"level": "debug"}]))
                for step_id in draw(st.permutations(["s1", "s2", "s3"]))[: draw(st.integers(1, 3))]
            ],
        }
        for name in flow_names
    ]
    handlers = [
        {
            "name": name,
            "event": "E",
            "flow": draw(st.sampled_from(flow_names)),
            "mode": draw(st.sampled_from(["sync", "async"])),
            "bindings": draw(st.sampled_from([{}, {"X": "X"}])),
        }
        for name in sorted(draw(st.sets(st.sampled_from(["h1", "h2"]))))
    ]
    data: dict[str, Any] = {"events": [{"name": "E"}], "flows": flows, "handlers": handlers}
    return Config.model_validate(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs(), configs())
def test_the_diff_is_empty_exactly_when_the_configs_dump_the_same(a: Config, b: Config):
    assert diff_configs(a, a).empty
    assert diff_configs(a, b).empty == (a.model_dump() == b.model_dump())
    assert diff_configs(a, b).empty == diff_configs(b, a).empty


V1_ONLY = """
    events:
      - {name: OrderPlaced, properties: {OrderId: {type: String, required: true}}}
    flows:
      - {name: logic, inputs: {OrderId: {type: String}}, steps: [{id: a, action: log, message: hi}]}
    handlers:
      - {name: Confirm, event: OrderPlaced, flow: logic, bindings: {OrderId: OrderId}}
      - {name: Ship, event: OrderPlaced, flow: logic, bindings: {OrderId: OrderId}}
"""

WITH_V2 = """
    events:
      - {name: OrderPlaced, properties: {OrderId: {type: String, required: true}}}
      - {name: OrderPlaced, version: 2, properties: {OrderId: {type: String, required: true}, Channel: {type: String}}}
    flows:
      - {name: logic, inputs: {OrderId: {type: String}}, steps: [{id: a, action: log, message: hi}]}
    handlers:
      - {name: Confirm, event: OrderPlaced, event_version: 1, flow: logic, bindings: {OrderId: OrderId}}
      - {name: Ship, event: OrderPlaced, flow: logic, bindings: {OrderId: OrderId}}
"""


def test_a_new_version_beside_the_old_one_is_an_added_event_version_and_names_handlers_left_on_the_old():
    result = diff(V1_ONLY, WITH_V2)
    assert result.lines() == [
        "+ event OrderPlaced v2",
        "~ handler Confirm: event_version",
        "! handler Confirm listens to OrderPlaced v1; the latest is v2",
    ]
    assert result.summary() == "events: 1 added; handlers: 1 changed"
    assert result.to_data()["older_subscriptions"] == [
        {"handler": "Confirm", "event": "OrderPlaced", "version": 1, "latest": 2}
    ]


def test_handlers_on_an_older_version_are_listed_even_when_nothing_else_changed():
    result = diff(WITH_V2, WITH_V2)
    assert result.empty and result.summary() == "no changes"
    assert result.lines() == ["! handler Confirm listens to OrderPlaced v1; the latest is v2"]


def test_versions_of_one_event_are_matched_by_version():
    edited = WITH_V2.replace("Channel: {type: String}", "Channel: {type: String, required: true}")
    dropped = WITH_V2.replace(
        "      - {name: OrderPlaced, properties: {OrderId: {type: String, required: true}}}\n", ""
    ).replace("event_version: 1, ", "")
    assert diff(WITH_V2, edited).lines()[0] == "~ event OrderPlaced v2: properties.Channel.required"
    assert diff(WITH_V2, dropped).lines() == ["- event OrderPlaced v1", "~ handler Confirm: event_version"]
