"""The text log format: a worker's line per run must read at a glance."""

from __future__ import annotations

import datetime as dt
import json
import logging

from flowbus.logs import JsonFormatter, TextFormatter, quieter


def record(**extra: object) -> logging.LogRecord:
    made = logging.makeLogRecord({"name": "flowbus.worker", "levelname": "INFO", "msg": "run finished"})
    made.__dict__.update(extra)
    return made


def test_the_text_format_writes_extra_fields_as_logfmt_quoting_spaces_and_leaving_out_none():
    line = TextFormatter().format(record(flow="Book", handler=None, status="rejected", error='too "much" = bad'))
    assert line.endswith(r'INFO    flowbus.worker: run finished flow=Book status=rejected error="too \"much\" = bad"')


def test_the_time_of_a_text_line_is_that_of_its_record_to_the_millisecond():
    formatter = TextFormatter()
    first, second = record(), record()
    second.created, second.msecs = first.created + 1.25, (first.msecs + 250) % 1000
    assert formatter.formatTime(first) == logging.Formatter().formatTime(first)
    assert formatter.formatTime(second) == logging.Formatter().formatTime(second)


def test_the_quieter_of_two_levels_is_kept():
    assert (quieter("debug", "warning"), quieter("error", "warning")) == ("warning", "error")


def test_a_json_line_uses_the_opentelemetry_log_data_models_names_and_keeps_the_run_fields():
    line = JsonFormatter().format(
        record(flow="Book", trace_id="4bf92f3577b34da6a3ce929d0e0e4736", span_id="00f067aa0ba902b7")
    )
    entry = json.loads(line)
    assert entry["severity_text"] == "INFO" and entry["severity_number"] == 9
    assert entry["body"] == "run finished" and entry["logger"] == "flowbus.worker"
    assert dt.datetime.fromisoformat(entry["timestamp"]).tzinfo is not None
    assert (entry["flow"], entry["trace_id"], entry["span_id"]) == (
        "Book",
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "00f067aa0ba902b7",
    )
