"""The ingress's side of a config: the event type of a raw payload and the inbound messages,
shaped from a compiled plan alone (no engine, no backend)."""

from __future__ import annotations

import pytest

from flowbus.config import load_config_text
from flowbus.errors import EventValidationError, UnknownNameError
from flowbus.queue import MessageKind, QueueName, source_message
from flowbus.runtime import inbound

CONFIG = """
sources:
  - {name: shop, event_type_from: "$.kind"}
  - {name: plain}
events:
  - {name: OrderPlaced, properties: {OrderId: {type: String, required: true}}}
  - {name: OrderPlaced, version: 2, properties: {OrderId: {type: String, required: true}, Channel: {type: String, required: true}}}
flows:
  - name: record
    source: shop
    event_type: placed
    steps: [{id: log, action: log, message: placed}]
"""


@pytest.fixture
def plan():
    return load_config_text(CONFIG, file="flowbus.yaml").plan


def test_the_event_type_is_a_string_the_sources_path_finds(plan):
    assert inbound.event_type_of(plan, "shop", {"kind": "placed"}) == "placed"
    assert inbound.event_type_of(plan, "shop", {"kind": 3}) is None  # not a string: no type
    assert inbound.event_type_of(plan, "plain", {"kind": "placed"}) is None  # no event_type_from
    assert inbound.event_type_of(plan, "nowhere", {"kind": "placed"}) is None


def test_an_event_message_is_checked_against_the_version_it_names_and_carries_the_config_version(plan):
    message = inbound.event_message(plan, "OrderPlaced", {"OrderId": "o1"}, "api", "g", "d", 1, config_version=7)
    assert (message.queue, message.kind, message.group_key, message.dedup_id, message.config_version) == (
        QueueName.INBOUND, MessageKind.EVENT, "g", "d", 7,
    )  # fmt: skip
    assert message.body == {"event": "OrderPlaced", "properties": {"OrderId": "o1"}, "source": "api", "version": 1}
    latest = inbound.event_message(plan, "OrderPlaced", {"OrderId": "o1", "Channel": "web"}, "api")
    assert (latest.body["version"], latest.config_version) == (2, None)
    with pytest.raises(EventValidationError, match="Channel: required, but missing"):
        inbound.event_message(plan, "OrderPlaced", {"OrderId": "o1"}, "api")


def test_an_unknown_event_or_version_is_refused_with_a_near_name(plan):
    with pytest.raises(UnknownNameError, match=r"no event 'OrderPlace' is defined; did you mean: OrderPlaced\?"):
        inbound.compiled_event(plan, "OrderPlace")
    with pytest.raises(UnknownNameError, match="OrderPlaced"):
        inbound.event_message(plan, "OrderPlaced", {"OrderId": "o1"}, "api", version=9)


def test_a_source_message_carries_the_payload_its_type_and_the_config_version():
    message = source_message("shop", "placed", {"kind": "placed"}, None, "d", 3)
    assert (message.queue, message.kind, message.dedup_id, message.config_version) == (
        QueueName.INBOUND, MessageKind.SOURCE, "d", 3,
    )  # fmt: skip
    assert message.body == {"source": "shop", "type": "placed", "data": {"kind": "placed"}}
