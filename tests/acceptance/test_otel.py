"""Traces in the tools teams already run: flowbus's processes export their spans over OTLP/HTTP to
a receiver in this test, which decodes them with OpenTelemetry's own protobuf classes."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("uvicorn", reason="the server extra is not installed")
pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed")

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanProto

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PRODUCER_SPAN = "00f067aa0ba902b7"


@dataclass
class Span:
    name: str
    service: str
    trace_id: str
    span_id: str
    parent: str
    kind: str
    attributes: dict[str, Any]
    links: list[tuple[str, str]]
    failed: bool


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


class Quiet(BaseHTTPRequestHandler):
    """A request handler that logs nothing and answers in one call."""

    def reply(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serving(handler: type[Quiet]) -> Iterator[str]:
    """A real HTTP server on a free port, in a thread; its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class Receiver:
    """An OTLP/HTTP endpoint (protobuf at ``/v1/traces``) that keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(Quiet):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                receiver.take(ExportTraceServiceRequest.FromString(body))
                self.reply(ExportTraceServiceResponse().SerializeToString(), "application/x-protobuf")

        self.handler = Handler
        self.endpoint = ""

    def take(self, request: ExportTraceServiceRequest) -> None:
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    with self._lock:
                        self.spans.append(
                            Span(
                                name=span.name, service=resource["service.name"], trace_id=span.trace_id.hex(),
                                span_id=span.span_id.hex(), parent=span.parent_span_id.hex(),
                                kind=SpanProto.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
                                attributes={a.key: _value(a.value) for a in span.attributes},
                                links=[(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
                                failed=span.status.code == 2,
                            )
                        )  # fmt: skip

    def named(self, name: str) -> list[Span]:
        with self._lock:
            return [span for span in self.spans if span.name == name]


@dataclass
class Crm:
    """The HTTP target of the flows: it keeps the headers of every request."""

    requests: list[dict[str, str]] = field(default_factory=list)
    base_url: str = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    with serving(found.handler) as found.endpoint:
        yield found


@pytest.fixture
def crm() -> Iterator[Crm]:
    found = Crm()

    class Handler(Quiet):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            found.requests.append({k.lower(): v for k, v in self.headers.items()})
            self.reply(b'{"ok": true}', "application/json")

    with serving(Handler) as found.base_url:
        yield found


def config(crm_url: str) -> str:
    """A trigger flow that publishes an event, whose async handler calls the CRM over http."""
    return textwrap.dedent(f"""
        project: {{name: traced}}
        sources:
          - {{name: shop}}
        targets:
          - {{name: crm, type: http, base_url: "{crm_url}", max_attempts: 1, timeout_s: 5}}
        events:
          - name: OrderPlaced
            properties:
              Number: {{type: String, required: true}}
        flows:
          - name: take_order
            source: shop
            event_type: order
            steps:
              - {{id: number, action: set, vars: {{n: "$.number"}}}}
              - {{id: placed, action: publish, event: OrderPlaced, properties: {{Number: "=vars.n"}}}}
          - name: tell_crm
            inputs: {{number: {{type: String, required: true}}}}
            steps:
              - {{id: push, action: http, target: crm, method: POST, path: /orders, body: {{number: "=inputs.number"}}}}
        handlers:
          - {{name: crm_on_order, event: OrderPlaced, flow: tell_crm, mode: async, bindings: {{Number: number}}}}
    """)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def otel_env(receiver: Receiver, service: str) -> dict[str, str]:
    return {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_SERVICE_NAME": service,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_TRACES_SAMPLER": "parentbased_always_on",
    }


def flowbus(*args: str, cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("w") as out:  # the child keeps its own copy of the file
        return subprocess.Popen(
            [sys.executable, "-m", "flowbus", *args], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT
        )


def flowbus_ok(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "flowbus", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def wait_for(check, what: str, timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout_s} s")


def wait_until_serving(process: subprocess.Popen, port: int, log: Path) -> None:
    def answers() -> bool:
        assert process.poll() is None, log.read_text()
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(answers, "the server answers")


def stop(process: subprocess.Popen, log: Path) -> None:
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0, log.read_text()


def only(spans: list[Span]) -> Span:
    assert len(spans) == 1, spans
    return spans[0]


def test_one_trace_runs_from_the_producers_request_to_the_steps_of_a_worker_in_another_process(tmp_path, receiver, crm):
    (tmp_path / "flowbus.yaml").write_text(config(crm.base_url))
    db = f"sqlite:///{tmp_path / 'flowbus.db'}"
    flowbus_ok("publish", "flowbus.yaml", "--db", db, cwd=tmp_path)
    token = flowbus_ok(
        "keys", "create", "--db", db, "--name", "shop", "--scope", "ingest", "--scope", "read", cwd=tmp_path
    )
    headers = {"Authorization": f"Bearer {token.strip()}"}
    port = free_port()
    api_log, worker_log = tmp_path / "serve.log", tmp_path / "worker.log"
    api = flowbus(
        "serve", "--db", db, "--port", str(port), cwd=tmp_path, env=otel_env(receiver, "shop-api"), log=api_log
    )
    worker = flowbus("worker", "--db", db, cwd=tmp_path, env=otel_env(receiver, "shop-worker"), log=worker_log)
    try:
        wait_until_serving(api, port, api_log)
        sent = httpx.post(
            f"http://127.0.0.1:{port}/v1/projects/traced/sources/shop/events",
            json={"number": "A-1"},
            headers={**headers, "X-Event-Type": "order", "traceparent": f"00-{TRACE_ID}-{PRODUCER_SPAN}-01"},
            timeout=10,
        )
        assert sent.status_code == 202, sent.text
        message_id = sent.json()["message_id"]
        wait_for(lambda: crm.requests, "the handler's http call reaches the CRM")

        def traced_run() -> dict | None:
            found = httpx.get(f"http://127.0.0.1:{port}/v1/projects/traced/messages/{message_id}", headers=headers)
            runs = found.json()["runs"]
            return runs[0] if runs else None

        stored_run = wait_for(traced_run, "the run is committed")
    finally:
        stop(worker, worker_log)
        stop(api, api_log)
    # the processes flush their spans when they stop
    wait_for(lambda: receiver.named("handler crm_on_order") and receiver.named("POST"), "the spans are exported", 10)

    request = only(receiver.named("POST /v1/projects/{project}/sources/{source}/events"))
    run = only(receiver.named("flow take_order"))
    number, placed = only(receiver.named("step number")), only(receiver.named("step placed"))
    waits = {span.attributes["messaging.destination.name"]: span for span in receiver.named("wait inbound")}
    waits |= {span.attributes["messaging.destination.name"]: span for span in receiver.named("wait outbound")}
    handler = only(receiver.named("handler crm_on_order"))
    push = only(receiver.named("step push"))
    client = only(receiver.named("POST"))
    # one trace, the producer's, from the request span to the handler's http call
    chain = [request, waits["inbound"], run, number, placed, waits["outbound"], handler, push, client]
    assert {span.trace_id for span in chain} == {TRACE_ID}
    assert (request.kind, request.parent, request.service) == ("SERVER", PRODUCER_SPAN, "shop-api")
    assert request.attributes["flowbus.message_id"] == message_id
    assert request.attributes["http.response.status_code"] == 202
    # the worker's spans, in its own process, hang from the request's
    assert {span.service for span in chain[1:]} == {"shop-worker"}
    assert (waits["inbound"].parent, waits["inbound"].kind, run.parent) == (
        request.span_id,
        "CONSUMER",
        request.span_id,
    )
    assert waits["inbound"].attributes["flowbus.message_id"] == message_id
    assert number.parent == placed.parent == run.span_id
    assert run.attributes | {"flowbus.run_id": None} == {
        "flowbus.run_id": None, "flowbus.flow": "take_order", "flowbus.trigger": "message",
        "flowbus.message_id": message_id, "flowbus.config_version": 1, "flowbus.attempt": 1,
        "flowbus.run.status": "succeeded",
    }  # fmt: skip
    # flowbus's own ids on the span lead to its trace in the API
    assert run.attributes["flowbus.run_id"] == stored_run["id"]
    assert placed.attributes["flowbus.step.action"] == "publish"
    # the async handler, queued by the publish step and run from another message, stays in the trace
    assert waits["outbound"].parent == handler.parent == placed.span_id
    assert handler.attributes["flowbus.handler"] == "crm_on_order"
    # the event's chain is rooted in the message: its correlation id
    assert handler.attributes["flowbus.correlation_id"] == message_id != handler.attributes["flowbus.event_id"]
    assert (push.parent, client.parent, client.kind) == (handler.span_id, push.span_id, "CLIENT")
    assert client.attributes["http.response.status_code"] == 200
    assert crm.requests[0]["traceparent"] == f"00-{TRACE_ID}-{client.span_id}-01"
    # each batch commit is a trace of its own, linked to the runs it committed
    commits = receiver.named("commit batch")
    assert commits and all(span.trace_id != TRACE_ID for span in commits)
    linked = {link for span in commits for link in span.links}
    assert {(TRACE_ID, run.span_id), (TRACE_ID, handler.span_id)} <= linked
    # the worker's line per run names its trace and span
    line = next(line for line in worker_log.read_text().splitlines() if "run finished flow=take_order" in line)
    assert f"trace_id={TRACE_ID} span_id={run.span_id}" in line


@contextlib.contextmanager
def flowbus_run(tmp_path: Path, receiver: Receiver, crm: Crm) -> Iterator[tuple[int, str]]:
    """``flowbus run`` of the config, tracing to ``receiver``: its port and the key it printed;
    stopped (its spans flushed) at the end."""
    (tmp_path / "flowbus.yaml").write_text(config(crm.base_url))
    port = free_port()
    log = tmp_path / "run.log"
    process = flowbus("run", "flowbus.yaml", "--port", str(port), cwd=tmp_path, env=otel_env(receiver, "shop"), log=log)
    try:
        wait_until_serving(process, port, log)
        yield port, wait_for(lambda: re.search(r"Bearer (fbk_\S+)'", log.read_text()), "the printed key").group(1)
    finally:
        stop(process, log)


def test_flowbus_run_continues_a_cloudevents_trace_and_carries_it_on_in_an_http_step(tmp_path, receiver, crm):
    with flowbus_run(tmp_path, receiver, crm) as (port, token):
        event_trace = "0af7651916cd43dd8448eb211c80319c"
        event = {
            "specversion": "1.0", "id": "e-1", "source": "shop/web", "type": "OrderPlaced",
            "data": {"Number": "B-7"}, "traceparent": f"00-{event_trace}-b7ad6b7169203331-01",
        }  # fmt: skip
        sent = httpx.post(
            f"http://127.0.0.1:{port}/v1/projects/traced/events",
            content=json.dumps(event),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/cloudevents+json"},
            timeout=10,
        )
        assert sent.status_code == 202, sent.text
        wait_for(lambda: crm.requests, "the http step reaches the CRM")
    wait_for(lambda: receiver.named("POST"), "the client span is exported", 10)
    client = only(receiver.named("POST"))
    handler = only(receiver.named("handler crm_on_order"))
    # the event's own trace context (the CloudEvents distributed-tracing extension) is continued,
    # and the http step sends it on, naming its client span as the parent
    assert (client.trace_id, handler.trace_id) == (event_trace, event_trace)
    assert crm.requests[0]["traceparent"] == f"00-{event_trace}-{client.span_id}-01"
    assert client.attributes["url.full"] == f"{crm.base_url}/orders"
    request = only(receiver.named("POST /v1/projects/{project}/events"))
    assert request.trace_id != event_trace  # the request itself came without a traceparent header


def test_a_trace_the_producer_did_not_sample_makes_no_spans_and_is_still_carried_on(tmp_path, receiver, crm):
    with flowbus_run(tmp_path, receiver, crm) as (port, token):
        sent = httpx.post(
            f"http://127.0.0.1:{port}/v1/projects/traced/sources/shop/events",
            json={"number": "C-3"},
            headers={
                "Authorization": f"Bearer {token}", "X-Event-Type": "order",
                "traceparent": f"00-{TRACE_ID}-{PRODUCER_SPAN}-00",
            },
            timeout=10,
        )  # fmt: skip
        assert sent.status_code == 202, sent.text
        wait_for(lambda: crm.requests, "the http step reaches the CRM")
    # the trace goes on, not sampled, from the ingress through the queue to the CRM
    traceparent = crm.requests[0]["traceparent"]
    assert traceparent.startswith(f"00-{TRACE_ID}-") and traceparent.endswith("-00")
    # and none of its spans were made; the batch commits, traces of their own, were
    wait_for(lambda: receiver.named("commit batch"), "the commit spans are exported", 10)
    assert [span.name for span in receiver.spans if span.trace_id == TRACE_ID] == []
