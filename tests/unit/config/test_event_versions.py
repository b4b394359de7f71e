"""Event versions in a config: a name may have several versions, each (name, version) once; handlers
and publish steps resolve to one version, checked against that version's properties."""

from __future__ import annotations

import textwrap

import pytest

from flowbus.config import ConfigError, Severity, load_config_text
from flowbus.publishing import manifest_of

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


def load(text: str):
    return load_config_text(textwrap.dedent(text), file="f.yaml")


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(text)
    return [str(i) for i in info.value.issues if i.severity is Severity.ERROR]


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
