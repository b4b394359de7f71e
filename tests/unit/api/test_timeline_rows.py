"""The timeline's rows for a trace that holds a message no flow took: a row that says so."""

from __future__ import annotations

import pytest

pytest.importorskip("jinja2", reason="the server extra is not installed")

from flowbus.api.dashboard.timeline import Row, _walk
from flowbus.runtime.routing import Unmatched
from flowbus.trace import TraceNode, UnmatchedMessage


def test_an_unmatched_message_in_a_trace_is_a_row_saying_it_matched_no_flow():
    found = Unmatched(source="shop", event_type="ordr", nearest=(("shop", "order"),))
    node = TraceNode(kind="unmatched", record=UnmatchedMessage("m1", found, 1, ()))
    rows: list[Row] = []
    _walk(node, 1, None, None, rows, chosen="r1")
    [row] = rows
    assert (row.kind, row.label, row.status) == ("message", "message m1", "unmatched")
    assert (
        row.note == "matched no flow: no enabled trigger flow for (shop, ordr); nearest configured pairs: (shop, order)"
    )
