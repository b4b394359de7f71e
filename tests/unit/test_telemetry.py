"""Tracing is off unless an OTEL_* variable asks for it, costs no import then, and keeps what it
stores with a message to a bounded W3C trace context."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowbus.telemetry import MAX_TRACESTATE_CHARS, Tracing, export_asked

trace = pytest.importorskip("opentelemetry.trace", reason="the otel extra is not installed")


@pytest.mark.parametrize(
    ("environ", "asked"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "shop"}, False),  # naming the service exports nothing
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, False),
    ],
)
def test_only_an_otel_variable_that_asks_for_export_turns_tracing_on(environ, asked):
    assert export_asked(environ) is asked


# a worker's whole start and a message run through it, then what it imported
_WORK = textwrap.dedent("""
    import asyncio, pathlib, sys, tempfile
    import flowbus
    from flowbus import telemetry
    from flowbus.testing import memory_engine

    CONFIG = '''
    project: {name: p}
    sources: [{name: s}]
    flows:
      - {name: f, source: s, event_type: t, steps: [{id: a, action: set, vars: {x: 1}}]}
    '''

    async def main():
        path = pathlib.Path(tempfile.mkdtemp()) / "flowbus.yaml"
        path.write_text(CONFIG)
        engine = await memory_engine(path)
        await engine.send("s", "t", {})
        runs = await engine.drain()
        assert [r.status.value for r in runs] == ["succeeded"], runs

    asyncio.run(main())
    print(telemetry.tracing() is None, sorted({m.split(".")[0] for m in sys.modules if m.startswith("opentelemetry")}))
""")


def run_work(environ: dict[str, str], before: str = "") -> tuple[bool, list[str], str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", before + _WORK], env={**clean, **environ}, capture_output=True, text=True, check=True
    )
    first, _, rest = done.stdout.partition("\n")
    off, modules = first.split(" ", 1)
    return off == "True", json.loads(modules.replace("'", '"')), done.stderr + rest


def test_without_an_otel_variable_a_worker_runs_without_importing_opentelemetry():
    assert run_work({"OTEL_SERVICE_NAME": "shop"})[:2] == (True, [])


def test_a_disabled_sdk_imports_nothing_either():
    assert run_work({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})[:2] == (
        True,
        [],
    )


def test_tracing_asked_for_without_the_otel_extra_says_so_once_and_runs_untraced():
    # opentelemetry made unimportable, as in an install without the extra
    hide = "import sys; sys.modules['opentelemetry'] = None\nimport logging; logging.basicConfig()\n"
    off, _, err = run_work({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}, before=hide)
    assert off
    assert err.count("pip install 'flowbus[otel]'") == 1


def test_tracing_asked_for_makes_the_spans_of_a_run():
    off, modules, out = run_work({"OTEL_TRACES_EXPORTER": "console"})
    assert (off, modules) == (False, ["opentelemetry"])
    # the console exporter prints the spans when the process ends
    assert '"name": "flow f"' in out and '"name": "step a"' in out


@pytest.fixture(scope="module")
def tracing() -> Tracing:
    # the API alone: propagating a context needs no SDK and no provider
    return Tracing(trace.get_tracer("test"))


@given(
    trace_id=st.integers(1, 2**128 - 1),
    span_id=st.integers(1, 2**64 - 1),
    sampled=st.booleans(),
    state=st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_\-*/]{0,15}", fullmatch=True),
        st.from_regex(r"[!-+\--<>-~]{1,16}", fullmatch=True),
        max_size=4,
    ),
)
def test_a_stored_trace_context_comes_back_as_the_same_context(tracing, trace_id, span_id, sampled, state):
    traceparent = f"00-{trace_id:032x}-{span_id:016x}-{'01' if sampled else '00'}"
    tracestate = ",".join(f"{k}={v}" for k, v in state.items())
    stored = tracing.carrier(tracing.extract({"traceparent": traceparent, "tracestate": tracestate}))
    assert stored is not None
    context = trace.get_current_span(tracing.context_of(stored)).get_span_context()
    assert (context.trace_id, context.span_id, context.trace_flags.sampled) == (trace_id, span_id, sampled)
    assert dict(context.trace_state) == state


def test_a_long_tracestate_is_dropped_and_the_trace_kept(tracing):
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    long_state = ",".join(f"k{i}=" + "v" * 20 for i in range(30))
    assert len(long_state) > MAX_TRACESTATE_CHARS
    stored = json.loads(tracing.carrier(tracing.extract({"traceparent": traceparent, "tracestate": long_state})))
    assert stored == {"traceparent": traceparent}


@pytest.mark.parametrize(
    "stored",
    [None, "", "not json", "[1]", '{"traceparent": 7}', '{"traceparent": "00-zz-zz-01"}', '{"tracestate": "a=b"}'],
)
def test_a_stored_context_that_is_not_one_gives_no_parent(tracing, stored):
    context = tracing.context_of(stored)
    assert context is None or not trace.get_current_span(context).get_span_context().is_valid


def test_no_context_is_stored_without_a_valid_span(tracing):
    assert tracing.carrier() is None
    assert tracing.carrier(tracing.extract({"traceparent": "00-" + "0" * 32 + "-" + "0" * 16 + "-01"})) is None
