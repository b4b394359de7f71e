"""The other side's limits and the target's own, against a real HTTP server on loopback, on every
backend: a 429 with Retry-After gives the message back (throttled) without spending an attempt,
bounded by the target's cap and its bound of deferrals; a target's rate limit spaces its calls."""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import json
import textwrap
import time
from http.server import BaseHTTPRequestHandler

import pytest

import flowbus.runtime.actions.http as http_action
from flowbus.config import load_config_text
from flowbus.config.limits import SLACK_S
from flowbus.engine import Engine
from flowbus.metrics import PROCESS
from flowbus.queue import MessageState
from flowbus.runtime.records import RunStatus, StepStatus
from flowbus.trace import to_data, trace_message


class Server(BaseHTTPRequestHandler):
    #: when each request came in (time.time())
    received: list[float] = []
    #: the answers to give, in order: (status, extra headers); then 201
    script: list[tuple[int, dict[str, str]]] = []
    #: the answer once the script is done
    otherwise: tuple[int, dict[str, str]] = (201, {})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Server.received.append(time.time())
        status, headers = Server.script.pop(0) if Server.script else Server.otherwise
        payload = json.dumps({"ok": status < 400}).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server(http_server) -> str:
    Server.received, Server.script, Server.otherwise = [], [], (201, {})
    return http_server(Server)


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    monkeypatch.setattr(http_action, "BASE_BACKOFF_S", 0.001)


def config(base_url: str, target_extra: str = "") -> str:
    return textwrap.dedent(f"""
        project: {{name: shop}}
        sources: [{{name: web, event_type_from: "$.kind"}}]
        targets:
          - {{name: crm, type: http, base_url: "{base_url}", max_attempts: 2, timeout_s: 5{target_extra}}}
        flows:
          - name: push
            source: web
            event_type: order
            steps:
              - {{id: send, action: http, target: crm, method: POST, path: /orders, body: {{n: 1}}}}
    """)


@pytest.fixture
async def engine_for(backend):
    engines: list[Engine] = []

    def make(base_url: str, target_extra: str = "") -> Engine:
        engine = Engine(load_config_text(config(base_url, target_extra)), backend=backend)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        await engine.close()


async def send(engine: Engine, n: int = 1) -> list[str]:
    return [await engine.send("web", "order", {"kind": "order", "id": f"o{i}"}) for i in range(n)]


def deferrals_of(project: str, target: str) -> float:
    return PROCESS.registry.get_sample_value("flowbus_deferrals_total", {"project": project, "target": target}) or 0.0


async def test_a_429_with_retry_after_gives_the_message_back_without_spending_an_attempt(server, engine_for, backend):
    engine = engine_for(server)
    Server.script = [(429, {"Retry-After": "1"})]
    [message_id] = await send(engine)
    counted = deferrals_of("shop", "crm")
    [first] = await engine.drain()
    assert first.status is RunStatus.THROTTLED and "Retry-After 1s" in (first.error or "")
    assert [s.status for s in first.steps] == [StepStatus.THROTTLED]
    message = await backend.get_message(message_id)
    assert message.state is MessageState.READY and message.attempts == 0 and message.errors == ()
    assert message.shown_state(dt.datetime.now(dt.UTC)) == "throttled" and message.deferrals == 1
    assert message.to_dict()["state"] == "throttled"
    assert message.available_at.timestamp() >= Server.received[0] + 0.99
    assert deferrals_of("shop", "crm") == counted + 1
    assert await engine.drain() == []  # not due yet: nothing runs
    run_node, waiting = await trace_message(backend, message_id)
    assert run_node.record.status is RunStatus.THROTTLED
    assert waiting.kind == "throttled" and "no attempt spent" in waiting.record.describe()
    assert to_data(waiting)["kind"] == "throttled"

    await asyncio.sleep(max(0.0, message.available_at.timestamp() - time.time()) + 0.05)
    [second] = await engine.drain()
    assert second.status is RunStatus.SUCCEEDED and second.attempt == 1  # the same attempt, run again
    assert Server.received[1] >= Server.received[0] + 1.0
    done = await backend.get_message(message_id)
    assert done.state is MessageState.DONE and done.attempts == 0
    runs = await backend.runs_for_message(message_id)
    assert sorted(r.status.value for r in runs) == ["succeeded", "throttled"]


async def test_a_retry_after_as_an_http_date_is_honoured(server, engine_for, backend):
    engine = engine_for(server)
    when = email.utils.format_datetime(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30), usegmt=True)
    Server.script = [(503, {"Retry-After": when})]
    [message_id] = await send(engine)
    await engine.drain()
    message = await backend.get_message(message_id)
    assert message.shown_state(dt.datetime.now(dt.UTC)) == "throttled" and message.attempts == 0
    assert 28 <= message.available_at.timestamp() - Server.received[0] <= 31


async def test_a_retry_after_past_the_cap_is_an_ordinary_failed_attempt(server, engine_for, backend):
    engine = engine_for(server, ", max_retry_after: 2s")
    Server.script = [(429, {"Retry-After": "3"})]
    [message_id] = await send(engine)
    [run] = await engine.drain(retry=True)
    assert run.status is RunStatus.FAILED and "longer than max_retry_after (2s)" in (run.error or "")
    message = await backend.get_message(message_id)
    assert message.attempts == 1 and message.deferrals == 0 and len(message.errors) == 1
    assert message.shown_state(dt.datetime.now(dt.UTC)) == "scheduled"  # waiting out its backoff, not throttled
    assert len(Server.received) == 1  # not retried inside the step either


async def test_a_message_is_given_back_at_most_max_deferrals_times(server, engine_for, backend):
    engine = engine_for(server, ", max_deferrals: 3")
    Server.otherwise = (429, {"Retry-After": "0"})  # a server that says "later" for ever
    [message_id] = await send(engine)
    runs = await engine.drain()
    assert [r.status for r in runs] == [RunStatus.THROTTLED] * 3 + [RunStatus.FAILED]
    assert "given back 3 times already (max_deferrals)" in (runs[-1].error or "")
    message = await backend.get_message(message_id)
    assert message.state is MessageState.DEAD and message.deferrals == 3 and message.attempts == 1
    assert len(Server.received) == 4


async def test_outside_a_queued_message_a_retry_after_is_retried_in_the_step(server, engine_for):
    engine = engine_for(server)
    Server.script = [(429, {"Retry-After": "1"})]
    run = await engine.run_flow("push", {})
    assert run.status is RunStatus.SUCCEEDED and len(Server.received) == 2


async def test_a_retry_after_holds_the_targets_limiter_for_every_caller(server, engine_for, backend):
    engine = engine_for(server, ", rate_limit: {limit: 100, period: 1s}")
    Server.script = [(429, {"Retry-After": "3"})]
    await send(engine)
    await engine.drain()
    wait = await backend.take_rate("crm", now=time.time(), interval_s=0.01, max_wait_s=0)
    assert 2.0 < wait <= 3.0


async def test_a_turn_too_far_away_gives_the_message_back_without_counting_a_deferral(server, engine_for, backend):
    engine = engine_for(server, ", rate_limit: {limit: 1, period: 1m}")
    _, second = await send(engine, 2)
    runs = await engine.drain()
    assert [r.status for r in runs] == [RunStatus.SUCCEEDED, RunStatus.THROTTLED]
    assert "rate limit (1 per 60s)" in (runs[1].error or "")
    message = await backend.get_message(second)
    assert message.shown_state(dt.datetime.now(dt.UTC)) == "throttled"
    assert message.attempts == 0 and message.deferrals == 0  # the limiter lets every call through in time
    assert 55 <= message.available_at.timestamp() - time.time() <= 66
    assert len(Server.received) == 1


async def test_a_retry_whose_turn_is_too_far_away_fails_and_spends_an_attempt(server, engine_for, backend):
    # 1 per 6 s: the retry's turn is more than MAX_WAIT_S away; giving the message back would start
    # it again at its first request, spending no attempt, for ever
    engine = engine_for(server, ", rate_limit: {limit: 1, period: 6s}")
    Server.otherwise = (500, {})
    [message_id] = await send(engine)
    [run] = await engine.drain(retry=True)
    assert run.status is RunStatus.FAILED
    assert "failed after 1 attempts: HTTP 500" in (run.error or "") and "too far away" in (run.error or "")
    message = await backend.get_message(message_id)
    assert message.attempts == 1 and message.deferrals == 0 and len(message.errors) == 1
    assert message.shown_state(dt.datetime.now(dt.UTC)) == "scheduled"  # its backoff, not throttled
    assert len(Server.received) == 1


async def test_failing_behind_a_slow_rate_limit_reaches_max_attempts(server, engine_for, backend):
    engine = engine_for(server, ", rate_limit: {limit: 1, period: 6s}")
    Server.otherwise = (500, {})
    [message_id] = await send(engine)
    [run] = await engine.drain()  # dead-lettered at its first failed attempt
    assert run.status is RunStatus.FAILED
    message = await backend.get_message(message_id)
    assert message.state is MessageState.DEAD and message.attempts == 1


async def test_a_retry_whose_turn_is_near_waits_for_it_in_the_step(server, engine_for, backend):
    engine = engine_for(server, ", rate_limit: {limit: 1, period: 1s}")
    Server.script = [(500, {})]
    [message_id] = await send(engine)
    started = time.time()
    [run] = await engine.drain()
    assert run.status is RunStatus.SUCCEEDED, run.error
    # timed from before the first turn: the first request's own delay (a first connection, a busy
    # machine) may be longer than the second's, so the two arrive less than a period apart
    assert len(Server.received) == 2 and Server.received[1] - started >= 1.0
    assert (await backend.get_message(message_id)).attempts == 0


@pytest.mark.parametrize("value", ["\u00b2", "1 Jan 99999999999 0:0:0"])
async def test_an_unreadable_retry_after_is_retried_in_the_step(server, engine_for, backend, value):
    engine = engine_for(server)
    Server.script = [(429, {"Retry-After": value})]  # "²" goes out as the latin-1 byte 0xB2
    [message_id] = await send(engine)
    [run] = await engine.drain()
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert len(Server.received) == 2
    message = await backend.get_message(message_id)
    assert message.attempts == 0 and message.deferrals == 0


async def test_a_rate_limit_spaces_the_calls_waited_for_in_the_step(server, engine_for):
    engine = engine_for(server, ", rate_limit: {limit: 5, period: 1s}")
    await send(engine, 8)
    runs = await engine.drain()
    assert [r.status for r in runs] == [RunStatus.SUCCEEDED] * 8
    received = Server.received
    # spaced (period + slack) / limit apart, as the limiter gave the turns; each request's own delay
    # on a busy machine moves its arrival, so the span is checked, less the limiter's slack
    assert received[-1] - received[0] >= 7 * 0.22 - SLACK_S


def test_retry_after_reads_seconds_and_http_dates():
    now = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
    assert http_action._retry_after("120", now=now) == 120.0
    assert http_action._retry_after("Fri, 27 Nov 2026 12:01:30 GMT", now=now) == 90.0
    assert http_action._retry_after("Fri, 27 Nov 2026 11:00:00 GMT", now=now) == 0.0
    assert http_action._retry_after("soon", now=now) is None
    assert http_action._retry_after("-5", now=now) is None
    assert http_action._retry_after("9" * 100, now=now) is None
    assert http_action._retry_after(None, now=now) is None
    # digits other than ASCII ones, and a date past what a datetime holds, are neither
    assert http_action._retry_after("\u00b2", now=now) is None
    assert http_action._retry_after("\uff11\uff12", now=now) is None
    assert http_action._retry_after("1 Jan 99999999999 0:0:0", now=now) is None
    assert http_action._retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now=now) == pytest.approx(
        (dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC) - now).total_seconds()
    )


async def test_the_api_shows_a_throttled_message_its_runs_and_the_deferrals(server, serve_api):
    from flowbus.keys import Scope
    from flowbus.publishing import active_config

    Server.script = [(429, {"Retry-After": "60"})]
    async with serve_api("shop", config(server), scopes=(Scope.INGEST, Scope.READ)) as (client, auth, store):
        number, loaded = await active_config(store)
        engine = Engine(loaded, backend=store, config_version=number)
        [message_id] = await send(engine)
        await engine.drain()
        await engine.close()
        shown = (await client.get(f"/v1/projects/shop/messages/{message_id}", headers=auth)).json()
        assert shown["state"] == "throttled" and shown["attempts"] == 0 and shown["deferrals"] == 1
        runs = (await client.get("/v1/projects/shop/runs?status=throttled", headers=auth)).json()
        assert [run["status"] for run in runs["items"]] == ["throttled"]
        metrics = (await client.get("/metrics")).text
        assert 'flowbus_deferrals_total{project="shop",target="crm"}' in metrics
