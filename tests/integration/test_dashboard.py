"""The dashboard over HTTP: sessions, CSRF, the auth matrix of its routes, and what its pages show."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import httpx
import pytest

pytest.importorskip("jinja2", reason="the server extra is not installed")

from starlette.routing import Mount, Route

from flowbus.api import create_app
from flowbus.api.dashboard import routes as dashboard_routes
from flowbus.events.frozen import freeze
from flowbus.ids import floor_id
from flowbus.keys import Scope, new_key, parse_token
from flowbus.publishing import publish_config
from flowbus.queue import QueueName
from flowbus.runtime.changes import Changeset
from flowbus.runtime.records import Run, RunStatus, Trigger
from flowbus.stores.sqlite import SqliteBackend

COMPASS = (Path(__file__).resolve().parents[2] / "examples" / "compass" / "flowbus.yaml").read_text()
#: reachable without a session: the sign-in form, signing in, and the static files
OPEN = {"/", "/signin"}


@pytest.fixture
async def dash(tmp_path):
    db = tmp_path / "flowbus.db"
    store = SqliteBackend(db, "compass")
    await publish_config(store, COMPASS, file="flowbus.yaml")
    tokens = {}
    for scope in Scope:
        key, tokens[scope] = new_key("compass", f"{scope} key", (scope,))
        await store.add_key(key)
    crm = SqliteBackend(db, "crm")
    key, tokens["other"] = new_key("crm", "crm admin", (Scope.ADMIN,))
    await crm.add_key(key)
    app = create_app(f"sqlite:///{db}")
    clients = []

    async def client() -> httpx.AsyncClient:
        made = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://f")
        clients.append(made)
        return made

    async with app.router.lifespan_context(app):
        yield store, tokens, client
    for made in clients:
        await made.aclose()
    await store.close()
    await crm.close()


async def signed_in(client, token: str) -> tuple[httpx.AsyncClient, str]:
    """A client holding the session of ``token``, and the session's CSRF token."""
    made = await client()
    response = await made.post("/signin", data={"key": token})
    assert response.status_code == 303, response.text
    page = await made.get(response.headers["location"])
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)
    return made, csrf


def run(run_id: str, status: RunStatus = RunStatus.SUCCEEDED, duration_s: float = 0.01, **fields) -> Run:
    return Run(
        id=run_id, flow=fields.pop("flow", "compass_company_upsert"), trigger=Trigger.MESSAGE, status=status,
        started_at=dt.datetime.now(dt.UTC), duration_s=duration_s, inputs=freeze({}), outputs=freeze({}), steps=(),
        config_version=1, **fields,
    )  # fmt: skip


def ids_now(count: int) -> list[str]:
    """Run ids made now, ascending."""
    base = floor_id(dt.datetime.now(dt.UTC))
    return [f"{base[:24]}{n:012x}" for n in range(count)]


def dashboard_paths() -> list[tuple[str, str]]:
    found = []
    for route in dashboard_routes():
        if isinstance(route, Mount) or not isinstance(route, Route) or route.path in OPEN:
            continue
        for method in sorted(route.methods - {"HEAD"}):
            found.append((method, route.path))
    return found


async def test_every_dashboard_route_wants_a_session_of_its_own_project_and_every_form_an_admin_and_csrf(dash):
    _store, tokens, client = dash
    anonymous = await client()
    other, _ = await signed_in(client, tokens["other"])
    reader, reader_csrf = await signed_in(client, tokens[Scope.READ])
    admin, _ = await signed_in(client, tokens[Scope.ADMIN])
    checked = 0
    for method, template in dashboard_paths():
        path = re.sub(r"\{(\w+)\}", lambda m: "compass" if m.group(1) == "project" else "1", template)
        response = await anonymous.request(method, path)
        assert response.status_code == 303 and response.headers["location"].startswith("/?next="), (method, path)
        response = await other.request(method, path)
        assert response.status_code == 403 and "signed in to project &#39;crm&#39;" in response.text, (method, path)
        if method == "POST":
            for forged in ("0" * 64, "é" * 64, ""):
                response = await admin.post(path, data={"csrf": forged})
                assert response.status_code == 403 and "CSRF" in response.text, (method, path)
            if not path.endswith("/signout"):
                response = await reader.post(path, data={"csrf": reader_csrf})
                assert response.status_code == 403 and "admin" in response.text, (method, path)
        checked += 1
    assert checked == len(dashboard_paths()) >= 5


async def test_an_ingest_key_a_wrong_key_and_a_tampered_or_revoked_session_do_not_get_in(dash):
    store, tokens, client = dash
    browser = await client()
    refused = await browser.post("/signin", data={"key": tokens[Scope.INGEST]})
    assert refused.status_code == 401 and "needs read or admin" in refused.text
    wrong = await browser.post("/signin", data={"key": tokens[Scope.READ][:-2] + "xx"})
    assert wrong.status_code == 401 and "not valid" in wrong.text
    signed = await browser.post("/signin", data={"key": tokens[Scope.READ], "next": "https://evil.example/"})
    assert signed.headers["location"] == "/p/compass/"  # never sent to another site
    cookie = signed.cookies["flowbus_session"]
    assert parse_token(tokens[Scope.READ])[1] not in cookie  # the cookie holds no secret
    set_cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=strict" in set_cookie
    assert (await browser.get("/p/compass/runs")).status_code == 200
    payload, _, signature = cookie.partition(".")
    for forged in (
        f"{payload}.{'0' * len(signature)}".encode(),
        f"{payload}.".encode() + b"\xe9" * 8,
        b"nope",
        b"e30.x",
    ):
        response = await (await client()).get("/p/compass/runs", headers=[(b"cookie", b"flowbus_session=" + forged)])
        assert response.status_code == 303, forged
    browser.cookies.set("flowbus_session", f"{payload}.{'0' * len(signature)}")
    assert (await browser.get("/p/compass/runs")).status_code == 303
    browser.cookies.set("flowbus_session", cookie)
    key_id = parse_token(tokens[Scope.READ])[0]
    await store.revoke_key(key_id)
    import asyncio

    await asyncio.sleep(1.1)  # the key cache's lifetime
    assert (await browser.get("/p/compass/runs")).status_code == 303


async def test_signing_out_ends_the_session(dash):
    _store, tokens, client = dash
    browser, csrf = await signed_in(client, tokens[Scope.READ])
    out = await browser.post("/p/compass/signout", data={"csrf": csrf})
    assert out.status_code == 303 and out.headers["location"] == "/"
    assert (await browser.get("/p/compass/")).status_code == 303


async def test_the_overview_shows_the_last_hours_throughput_failure_rate_latency_and_queues(dash):
    store, tokens, client = dash
    ids = ids_now(20)
    an_hour_ago = floor_id(dt.datetime.now(dt.UTC) - dt.timedelta(hours=2))
    runs = [run(i, RunStatus.FAILED if n < 5 else RunStatus.SUCCEEDED, duration_s=(n + 1) / 100)
            for n, i in enumerate(ids)]  # fmt: skip
    runs.append(run(an_hour_ago, RunStatus.FAILED, duration_s=99))  # outside the window
    await store.apply(Changeset(runs=runs))
    browser, _ = await signed_in(client, tokens[Scope.READ])
    page = (await browser.get("/p/compass/")).text
    assert re.search(r'id="failure-rate">25\.0%<', page)
    assert re.search(r'id="p50">100\.0 ms<', page)  # the 10th of 10..200 ms
    assert re.search(r'id="p95">190\.0 ms<', page)
    assert re.search(r'id="throughput">0\.33</span><span class="label">runs/min · 20 runs<', page)
    assert page.count('<line class="latency"') == 1  # this minute's p95
    assert page.count('<rect class="failed"') == 1 and page.count('<rect class="succeeded"') == 1


async def test_the_runs_list_filters_pages_by_cursor_and_polls_only_newer_runs(dash):
    store, tokens, client = dash
    ids = ids_now(60)
    await store.apply(Changeset(runs=[run(i, RunStatus.FAILED if n % 3 == 0 else RunStatus.SUCCEEDED,
                                          error="<script>alert(1)</script>" if n % 3 == 0 else None)
                                      for n, i in enumerate(ids)]))  # fmt: skip
    browser, _ = await signed_in(client, tokens[Scope.READ])
    first = (await browser.get("/p/compass/runs")).text
    shown = re.findall(r'data-run="([^"]+)"', first)
    assert shown == ids[::-1][:50]
    assert "<script>alert(1)</script>" not in first and "&lt;script&gt;alert(1)&lt;/script&gt;" in first
    older = re.search(r'href="(/p/compass/runs\?[^"]*cursor=[^"]+)"', first).group(1).replace("&amp;", "&")
    assert re.findall(r'data-run="([^"]+)"', (await browser.get(older)).text) == ids[::-1][50:]
    failed = (await browser.get("/p/compass/runs?status=failed")).text
    assert re.findall(r'data-run="([^"]+)"', failed) == [i for n, i in enumerate(ids) if n % 3 == 0][::-1]
    assert "after=" in failed and "status=failed" in failed  # the poller keeps the filters
    newer = (await browser.get(f"/p/compass/runs/newer?status=failed&after={ids[50]}")).text
    assert re.findall(r'data-run="([^"]+)"', newer) == [ids[57], ids[54], ids[51]]
    assert f"after={ids[57]}" in newer  # the next poll starts after the newest shown
    assert (await browser.get("/p/compass/runs/newer?after=x")).status_code == 422


async def test_the_runs_list_keeps_to_a_time_window_given_in_the_viewers_zone(dash):
    store, tokens, client = dash
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    at = {name: floor_id(now + dt.timedelta(minutes=m)) for name, m in (("early", -30), ("mid", -10), ("late", -1))}
    await store.apply(Changeset(runs=[run(i) for i in at.values()]))
    browser, _ = await signed_in(client, tokens[Scope.READ])
    # the viewer is two hours east of UTC: their 12:00 is 10:00 UTC
    local = lambda t: (t + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")  # noqa: E731
    since, until = local(now - dt.timedelta(minutes=20)), local(now - dt.timedelta(minutes=5))
    page = (await browser.get(f"/p/compass/runs?since={since}&until={until}&tz=120")).text
    assert re.findall(r'data-run="([^"]+)"', page) == [at["mid"]]
    bad = (await browser.get("/p/compass/runs?since=yesterday")).text
    assert "since is not a time" in bad


async def test_a_run_page_draws_the_chain_from_its_message_with_queue_wait_apart(dash):
    store, tokens, client = dash
    from flowbus.config import load_config_text
    from flowbus.engine import Engine
    from flowbus.worker import Worker, WorkerSettings

    engine = Engine(load_config_text(COMPASS, file="flowbus.yaml"), backend=store, config_version=1)
    payload = {"event": "upsert_company", "payload": {"domain": "a.example", "name": "A <b>"}}
    message = engine.source_message("compass_inbound", "upsert_company", payload)
    [message_id] = await store.send([message])
    worker = Worker(engine, WorkerSettings())
    await worker.run_until_idle()
    [made] = await store.runs_for_message(message_id)
    browser, _ = await signed_in(client, tokens[Scope.READ])
    page = (await browser.get(f"/p/compass/runs/{made.id}")).text
    kinds = re.findall(r'<li class="row (\w+)', page)
    assert kinds == ["message", "run", "step"]
    assert 'class="row run selected"' in page
    assert "wait " in page and 'class="wait"' in page
    assert "A &lt;b&gt;" in page and "A <b>" not in page
    assert (await browser.get("/p/compass/runs/nope")).status_code == 404


async def dead_letters(store, count: int) -> list[str]:
    """``count`` compass messages, dead after one attempt each, sent on version 1."""
    from flowbus.queue import AttemptError, MessageKind, OutgoingMessage, QueueName
    from flowbus.runtime.changes import Retry

    body = {"source": "compass_inbound", "type": "upsert_company", "data": {"event": "upsert_company"}}
    sent = await store.send([OutgoingMessage(QueueName.INBOUND, MessageKind.SOURCE, body, config_version=1)] * count)
    now = dt.datetime.now(dt.UTC)
    claimed = await store.claim([QueueName.INBOUND], limit=count, owner="w", lease_s=30)
    await store.apply(Changeset(retries=[Retry(m.id, "w", AttemptError(1, "boom <i>", now, 1), now, dead=True)
                                         for m in claimed]))  # fmt: skip
    return sent


async def test_a_redrive_dry_run_names_what_would_run_on_which_version_and_changes_nothing(dash):
    store, tokens, client = dash
    sent = await dead_letters(store, 3)
    no_flows = COMPASS.replace("upsert_company\n", "upsert_company_v2\n", 1)
    await publish_config(store, no_flows, file="flowbus.yaml")  # v2 routes upsert_company nowhere
    admin, csrf = await signed_in(client, tokens[Scope.ADMIN])
    listed = (await admin.get("/p/compass/dead-letters")).text
    assert re.findall(r'data-message="([^"]+)"', listed) == sent
    assert "boom &lt;i&gt;" in listed
    own = await admin.post(
        "/p/compass/dead-letters/redrive", data={"csrf": csrf, "ids": sent[:2], "version": "own", "do": "dry"}
    )
    rows = re.findall(r"<tr><td><code>.*?</tr>", own.text, re.S)
    assert len(rows) == 2 and all("flow compass_company_upsert" in r and ">v1<" in r for r in rows)
    active = await admin.post(
        "/p/compass/dead-letters/redrive", data={"csrf": csrf, "ids": sent[0], "version": "active", "do": "dry"}
    )
    assert "the version routes it nowhere" in active.text and ">v2<" in active.text
    assert [m.id for m in await store.dead_letters()] == sent  # a dry run changes nothing
    done = await admin.post("/p/compass/dead-letters/redrive", data={"csrf": csrf, "ids": sent[:2], "version": "own"})
    assert done.status_code == 303 and done.headers["location"].endswith("redriven=2")
    assert [m.id for m in await store.dead_letters()] == sent[2:]
    [again] = await store.claim([QueueName.INBOUND], limit=1, owner="x", lease_s=5)
    assert again.id == sent[0] and again.config_version == 1  # on its own version, as asked
    detail = (await admin.get(f"/p/compass/dead-letters/{sent[2]}")).text
    assert "boom &lt;i&gt;" in detail and 'id="attempts"' in detail
    assert (await admin.get(f"/p/compass/dead-letters/{sent[0]}")).status_code == 404  # no longer dead


async def test_the_dead_letters_list_pages_oldest_first_and_filters(dash):
    store, tokens, client = dash
    sent = await dead_letters(store, 55)
    reader, _ = await signed_in(client, tokens[Scope.READ])
    first = (await reader.get("/p/compass/dead-letters")).text
    assert re.findall(r'data-message="([^"]+)"', first) == sent[:50]
    assert "Redrive selected" not in first  # a read key sees, but cannot redrive
    more = re.search(r'href="(/p/compass/dead-letters\?after=[^"]+)"', first).group(1)
    assert re.findall(r'data-message="([^"]+)"', (await reader.get(more)).text) == sent[50:]
    assert "data-message" not in (await reader.get("/p/compass/dead-letters?queue=outbound")).text
    assert "data-message" not in (await reader.get("/p/compass/dead-letters?name=other_source")).text


async def test_a_draft_is_validated_saved_published_and_a_version_rolled_back_and_diffed(dash):
    store, tokens, client = dash
    admin, csrf = await signed_in(client, tokens[Scope.ADMIN])
    bad = await admin.post("/p/compass/config/draft", data={"csrf": csrf, "text": "flows: [{name: f}]", "do": "save"})
    assert bad.status_code == 422 and "flows[0].steps" in bad.text and await store.get_draft() is None
    other = await admin.post(
        "/p/compass/config/draft", data={"csrf": csrf, "text": COMPASS.replace("name: compass", "name: crm", 1)}
    )
    assert other.status_code == 422 and "names project &#39;crm&#39;" in other.text
    changed = COMPASS.replace("upsert_company\n", "upsert_company\n    enabled: false\n", 1)
    saved = await admin.post("/p/compass/config/draft", data={"csrf": csrf, "text": changed, "do": "save"})
    assert saved.headers["location"].endswith("saved=1") and (await store.get_draft())[0] == changed
    assert await store.active_version() == 1
    published = await admin.post("/p/compass/config/draft", data={"csrf": csrf, "text": changed, "do": "publish"})
    assert published.headers["location"].endswith("published=2") and await store.active_version() == 2
    diff = (await admin.get("/p/compass/config/diff?old=1&new=2")).text
    assert "compass_company_upsert" in diff and "enabled" in diff
    assert (await admin.get("/p/compass/config/diff?old=1&new=9")).status_code == 404
    assert (await admin.get(f"/p/compass/config/diff?old=1&new={2**70}")).status_code == 422
    back = await admin.post("/p/compass/config/versions/1/rollback", data={"csrf": csrf})
    assert back.headers["location"].endswith("published=3") and await store.active_version() == 3
    assert "The two versions mean the same" in (await admin.get("/p/compass/config/diff?old=1&new=3")).text
    assert (await admin.post("/p/compass/config/versions/7/rollback", data={"csrf": csrf})).status_code == 404
    assert (await admin.post(f"/p/compass/config/versions/{2**70}/rollback", data={"csrf": csrf})).status_code == 422


PINGS = """
project: {name: compass}
sources: [{name: pings, event_type_from: "$.kind"}]
targets: [{name: store, type: store}]
events:
  - name: Pinged
    properties:
      N: {type: Integer, required: true}
      Who: {type: String}
flows:
  - name: on_ping
    source: pings
    event_type: ping
    steps:
      - {id: tell, action: publish, event: Pinged, properties: {N: "=data.n"}}
  - name: on_pong
    source: pings
    event_type: pong
    steps: [{id: nothing, action: log, message: pong}]
  - name: count
    inputs: {N: {type: Integer, required: true}}
    steps: [{id: save, action: save, entity: Count, data: {n: "=inputs.N"}}]
  - name: greet
    inputs: {Who: {type: String, required: true}}
    steps: [{id: save, action: save, entity: Greeting, data: {who: "=inputs.Who"}}]
  - name: archived
    enabled: false
    inputs: {N: {type: Integer, required: true}}
    steps: [{id: save, action: save, entity: Old, data: {n: "=inputs.N"}}]
handlers:
  - {name: Count, event: Pinged, flow: count, mode: sync, bindings: {N: N}}
  - {name: Greet, event: Pinged, flow: greet, mode: async, bindings: {Who: Who}}
  - {name: Archive, event: Pinged, flow: archived, bindings: {N: N}}
"""


async def pinged(store, payload: dict, *, dedup: str | None = None) -> str:
    """Publish ``PINGS`` as version 2 and run one pings message through a worker; its message id."""
    from flowbus.config import load_config_text
    from flowbus.engine import Engine
    from flowbus.worker import Worker, WorkerSettings

    result = await publish_config(store, PINGS, file="pings.yaml")
    engine = Engine(load_config_text(PINGS, file="pings.yaml"), backend=store, config_version=result.version.number)
    [message_id] = await store.send([engine.source_message("pings", "ping", payload, dedup_id=dedup)])
    await Worker(engine, WorkerSettings()).run_until_idle()
    return message_id


async def test_an_event_page_shows_its_data_dedup_verdict_runs_and_near_misses_and_sends_it_again(dash):
    store, tokens, client = dash
    message_id = await pinged(store, {"kind": "ping", "n": 3}, dedup="order-7")
    [event] = await store.list_events()
    admin, csrf = await signed_in(client, tokens[Scope.ADMIN])
    listed = (await admin.get("/p/compass/events?type=Pinged")).text
    assert re.findall(r'data-event="([^"]+)"', listed) == [event.id]
    assert "data-event" not in (await admin.get("/p/compass/events?type=Nope")).text
    assert re.findall(r'data-event="([^"]+)"', (await admin.get(f"/p/compass/events?chain={message_id}")).text) == [
        event.id
    ]
    page = (await admin.get(f"/p/compass/events/{event.id}")).text
    assert "dedup id &#39;order-7&#39;" in page and message_id in page
    assert "&#34;N&#34;: 3" in page
    assert "handler Count → flow count" in page  # the sync handler it ran
    hits = re.findall(r'<tr class="hit">.*?</tr>', page, re.S)
    misses = re.findall(r'<tr class="miss">.*?</tr>', page, re.S)
    assert len(hits) == 1 and "handler Count" in hits[0]
    assert any("handler Greet" in m and "needs Who" in m for m in misses)  # the data has no Who
    assert any("handler Archive" in m and "disabled" in m for m in misses)
    again = await admin.post(f"/p/compass/events/{event.id}/send-again", data={"csrf": csrf})
    assert again.status_code == 303 and "sent=" in again.headers["location"]
    sent = again.headers["location"].split("sent=")[1]
    resent = await store.get_message(sent)
    assert resent.body["event"] == "Pinged" and resent.body["properties"] == {"N": 3} and resent.dedup_id is None
    assert "Sent again as message" in (await admin.get(again.headers["location"])).text
    # the trigger run's timeline: the sync handler's run sits inside its publisher's publish step
    [trigger] = [r for r in await store.runs_for_message(message_id) if r.flow == "on_ping"]
    timeline = (await admin.get(f"/p/compass/runs/{trigger.id}")).text
    rows = re.findall(
        r'<li class="row (\w+)[^"]*">.*?<span class="name depth-(\d+)">\s*<span class="kind">\w+</span>\s*(.*?)\s*<span',
        timeline,
        re.S,
    )
    shape = [(kind, int(depth), re.sub(r"<[^>]+>", "", label).strip()) for kind, depth, label in rows]
    assert shape == [
        ("message", 0, "message pings ping"),
        ("run", 1, "flow on_ping"),
        ("step", 2, "tell (publish)"),
        ("event", 3, "event Pinged v1"),
        ("run", 4, "handler Count → flow count"),
        ("step", 5, "save (save)"),
        ("run", 4, "handler Greet → flow greet"),  # async: its own message, drawn after its queue wait
    ]
    assert "sync, inside its publisher" in timeline


async def test_the_dry_run_says_which_flows_a_payload_would_run_and_why_the_others_would_not(dash):
    store, tokens, client = dash
    await publish_config(store, PINGS, file="pings.yaml")
    reader, _ = await signed_in(client, tokens[Scope.READ])
    from urllib.parse import urlencode

    def url(**query) -> str:
        return "/p/compass/events/match?" + urlencode(query)

    page = (await reader.get(url(mode="source", source="pings", payload='{"kind": "ping", "n": 1}'))).text
    assert re.findall(r'<tr class="hit">.*?flow (\w+)', page, re.S) == ["on_ping"]
    assert re.search(r"flow on_pong</td><td>it runs for event type &#39;pong&#39;, not &#39;ping&#39;", page)
    typo = (await reader.get(url(mode="source", source="ping", event_type="ping", payload="{}"))).text
    assert "there is no source &#39;ping&#39;; did you mean &#39;pings&#39;?" in typo
    untyped = (await reader.get(url(mode="source", source="pings", payload='{"n": 1}'))).text
    assert "finds none in the payload" in untyped
    event = (await reader.get(url(mode="event", event="Pinged", payload='{"N": 2, "Who": "Ada"}'))).text
    assert re.findall(r'<tr class="hit">.*?handler (\w+)', event, re.S) == ["Count", "Greet"]
    bad = (await reader.get(url(mode="event", event="Pinged", payload='{"N": "two"}'))).text
    assert re.search(r'class="problem">N: ', bad)
    assert "the payload is not JSON" in (await reader.get(url(mode="source", source="pings", payload="{nope"))).text
    assert 'class="hit"' not in (await reader.get(url(mode="event", event="Pinged2", payload="{}"))).text


async def test_the_queues_page_shows_depth_per_queue_and_blocked_groups_with_their_blocker(dash):
    store, tokens, client = dash
    from flowbus.queue import AttemptError, MessageKind, OutgoingMessage
    from flowbus.runtime.changes import Retry

    out = QueueName.OUTBOUND
    head, _next = await store.send(
        [OutgoingMessage(out, MessageKind.HANDLER, {"handler": "h", "event_id": "e"}, "cust-9")] * 2
    )
    await store.send([OutgoingMessage(out, MessageKind.HANDLER, {"handler": "h", "event_id": "f"}, "cust-1")])
    [_claimed] = [m for m in await store.claim([out], limit=5, owner="w", lease_s=30) if m.id == head]
    now = dt.datetime.now(dt.UTC)
    await store.apply(
        Changeset(retries=[Retry(head, "w", AttemptError(3, "the CRM said no", now, 1), now, dead=True, blocking=True)])
    )
    reader, _ = await signed_in(client, tokens[Scope.READ])
    page = (await reader.get("/p/compass/queues")).text
    groups = re.findall(r'<tr data-group="([^"]+)"( class="blocked")?', page)
    assert groups == [("cust-9", ' class="blocked"'), ("cust-1", "")]
    assert f"/dead-letters/{head}" in page and "the CRM said no" in page
    outbound = re.search(r"<td>outbound</td>(.*?)</tr>", page, re.S).group(1)
    assert re.findall(r">(\d+)<", outbound)[:2] == ["1", "1"]  # one ready (behind the blocker), one leased


async def test_bulk_retry_redrives_the_dead_messages_of_the_chosen_failed_runs_on_the_active_version(dash):
    store, tokens, client = dash
    sent = await dead_letters(store, 3)
    failed = [run(i, RunStatus.FAILED, message_id=m) for i, m in zip(ids_now(3), sent, strict=True)]
    await store.apply(Changeset(runs=failed))
    await store.redrive([sent[2]])  # already retried: no longer dead
    await publish_config(store, COMPASS.replace("Companies as", "Companies, as"), file="flowbus.yaml")  # v2
    admin, csrf = await signed_in(client, tokens[Scope.ADMIN])
    page = (await admin.get("/p/compass/runs?status=failed")).text
    assert page.count('name="runs"') == 3 and 'form="retry"' in page
    done = await admin.post("/p/compass/runs/retry", data={"csrf": csrf, "runs": [r.id for r in failed]})
    assert done.status_code == 303
    notice = (await admin.get(done.headers["location"])).text
    assert "Retried 2 failed runs" in notice and "1 chosen run was left alone" in notice
    assert await store.dead_letters() == []
    queued = [await store.get_message(m) for m in sent[:2]]
    assert [(m.state, m.config_version) for m in queued] == [("ready", 2), ("ready", 2)]


async def test_the_runs_list_filters_by_source_event_type_and_config_version(dash):
    store, tokens, client = dash
    from flowbus.queue import MessageKind, OutgoingMessage

    bodies = [{"source": "compass_inbound", "type": t, "data": {}} for t in ("upsert_company", "delete_company")]
    messages = await store.send([OutgoingMessage(QueueName.INBOUND, MessageKind.SOURCE, b) for b in bodies])
    made = [
        run(i, message_id=m)._replace(config_version=v) for i, m, v in zip(ids_now(2), messages, (1, 2), strict=True)
    ]
    await store.apply(Changeset(runs=made))
    reader, _ = await signed_in(client, tokens[Scope.READ])

    async def shown(query: str) -> list[str]:
        return re.findall(r'data-run="([^"]+)"', (await reader.get(f"/p/compass/runs?{query}")).text)

    assert await shown("source=compass_inbound") == [made[1].id, made[0].id]
    assert await shown("event_type=delete_company") == [made[1].id]
    assert await shown("version=v1") == [made[0].id]
    assert await shown("source=elsewhere") == []
    assert "the config version is a number" in (await reader.get("/p/compass/runs?version=latest")).text


async def test_the_entities_page_lists_an_entitys_keys_and_reads_a_record_by_key(dash):
    store, tokens, client = dash
    from flowbus.runtime.changes import EntityWrite

    writes = {("company", f"c{n:03}.example"): EntityWrite({"name": f"<C{n}>"}, None) for n in range(105)}
    await store.apply(Changeset(writes=writes))
    reader, _ = await signed_in(client, tokens[Scope.READ])
    start = (await reader.get("/p/compass/entities")).text
    assert 'href="/p/compass/entities?entity=company"' in start  # named by the config's hubspot target
    listed = (await reader.get("/p/compass/entities?entity=company")).text
    keys = re.findall(r"<code>(c\d+\.example)</code>", listed)
    assert keys == [f"c{n:03}.example" for n in range(100)]
    # the next page goes on after the last key shown, as the API's entity list does
    [following] = re.findall(r'id="next-page" href="([^"]+)"', listed)
    rest = (await reader.get(following.replace("&amp;", "&"))).text
    assert re.findall(r"<code>(c\d+\.example)</code>", rest) == [f"c{n:03}.example" for n in range(100, 105)]
    assert 'id="next-page"' not in rest
    filtered = (await reader.get("/p/compass/entities", params={"entity": "company", "where": "name=<C7>"})).text
    assert re.findall(r"<code>(c\d+\.example)</code>", filtered) == ["c007.example"]
    refused = (await reader.get("/p/compass/entities", params={"entity": "company", "where": "no equals sign"})).text
    assert 'role="alert"' in refused and "no equals sign" in refused
    one = (await reader.get("/p/compass/entities?entity=company&key=c104.example")).text
    assert "&lt;C104&gt;" in one and "version 1" in one
    assert "No company with key" in (await reader.get("/p/compass/entities?entity=company&key=nope")).text
    assert "No nothing is stored" in (await reader.get("/p/compass/entities?entity=nothing")).text
