"""The integrations' REST API: real HTTP requests to the running service, a real CRM (SQLite and PostgreSQL).

The ACD is a stand-in with ``queue_rows()``/``agent_rows()`` (a port, not a database); sessions are the
desktop's ``SessionStore`` on a test clock, so expiry is a clock step.
"""

from __future__ import annotations

import json
import logging
import socket
import urllib.request
from datetime import datetime, timezone

import pytest
import pytest_twisted
from twisted.internet import reactor, task, threads

from agent_desktop.auth import SessionStore
from agent_desktop.rest import MAX_BODY, RestService
from agent_desktop.scope import EVERYTHING, Scope
from callcenter.config import ConfigError, CrmConfig, DesktopConfig, build_config
from crm_core.contacts import thd_log_contacts
from crm_core.customers import NewCustomer, thd_create_customer
from crm_core.records import ContactRecord
from crm_core.service import CrmService
from tests.crm_servers import crm_templates, crm_url  # noqa: F401 (fixtures)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
QUEUES = [{"queue": "sales", "waiting": 2, "longest_wait": 31.5, "service_level": 0.8},
          {"queue": "support", "waiting": 0, "longest_wait": 0.0, "service_level": None},
          {"queue": "vip", "waiting": 1, "longest_wait": 4.0, "service_level": 1.0}]
AGENTS = [{"agent": "1001", "state": "ready", "queues": ["sales"]},
          {"agent": "1002", "state": "talking", "queues": ["support", "vip"]},
          {"agent": "1003", "state": "logged-out", "queues": []}]


class FakeAcd:
    """The ACD's status views, as the REST API reads them."""

    def __init__(self):
        self.queues, self.agents = QUEUES, AGENTS

    def queue_rows(self):
        return [dict(row) for row in self.queues]

    def agent_rows(self):
        return [dict(row) for row in self.agents]


class Lab:
    """The service under test and what it is wired to."""

    def __init__(self, crm, crm_timeout=10.0):
        self.crm = crm
        self.clock = task.Clock()
        self.clock.advance(1_700_000_000)
        self.sessions = SessionStore(self.clock, 3600)
        self.acd: FakeAcd | None = FakeAcd()
        #: What the API gets as the CRM store (None: no CRM).
        self.store = lambda: crm.store if crm is not None else None
        #: agent login -> Scope (default: everything).
        self.scopes: dict[str, Scope] = {}
        self.service = RestService(DesktopConfig(api_bind="127.0.0.1", api_port=0), reactor, self.sessions,
                                   lambda s: self.scopes.get(s.agent, EVERYTHING),
                                   lambda: self.store(), lambda: self.acd, crm_timeout)
        self.customer_id = 0
        self.other_id = 0

    def token(self, agent="1001", role="agent"):
        return self.sessions.open(agent, role).token

    async def call(self, method, path, token=None, body=None, *, raw=None, headers=None):
        """``(status, headers, decoded JSON)`` of one HTTP request; ``raw``: the body bytes as they are."""
        host, port = self.service.address
        sent = dict(headers or {})
        if token is not None:
            sent.setdefault("Authorization", f"Bearer {token}")
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        return await threads.deferToThread(_exchange, f"http://{host}:{port}{path}", method, sent, data)


def _exchange(address, method, headers, data):
    req = urllib.request.Request(address, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, got, body = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        status, got, body = err.code, err.headers, err.read()
    assert got["Content-Type"] == "application/json; charset=utf-8", (status, got["Content-Type"], body)
    return status, got, json.loads(body.decode("utf-8"))


def _seed(engine):
    wang = thd_create_customer(engine, NewCustomer("王芳", phones=("13900139000",), emails=("wang@example.com",)),
                               "CN")
    other = thd_create_customer(engine, NewCustomer("John Smith", language="en", phones=("+12025550143",)), "CN")
    thd_log_contacts(engine, [
        ContactRecord("1714.1", T0, direction="inbound", ani="13900139000", dnis="4000", caller_name="王芳",
                      customer_id=wang, queue="sales", agent="1001", answered_at=T0, ended_at=T0, talk_seconds=42.0),
        ContactRecord("1714.2", T0.replace(hour=10), direction="inbound", ani="13900139000", customer_id=wang,
                      queue="sales", abandoned=True, ended_at=T0.replace(hour=10))], "CN")
    return wang, other


@pytest.fixture
def crm(tmp_path, crm_url):  # noqa: F811
    svc = CrmService(reactor, CrmConfig(url=crm_url, journal=str(tmp_path / "contacts.journal")))
    pytest_twisted.blockon(svc.startService())
    yield svc
    if svc.running:
        pytest_twisted.blockon(svc.stopService())


def _lab(crm, **settings):
    lab = Lab(crm, **settings)
    if crm is not None:
        lab.customer_id, lab.other_id = pytest_twisted.blockon(threads.deferToThread(_seed, crm.engine))
    pytest_twisted.blockon(lab.service.startService())
    return lab


@pytest.fixture
def lab(crm):
    made = _lab(crm)
    yield made
    pytest_twisted.blockon(made.service.stopService())


@pytest.fixture
def bare():
    """The API without a CRM (for what needs none: auth, paths, bodies, live status)."""
    made = _lab(None)
    yield made
    pytest_twisted.blockon(made.service.stopService())


# -- authentication ---------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_no_bad_or_expired_token_gets_401_with_a_bearer_challenge(bare):
    """No token, an unknown one, another scheme and an expired session: 401, JSON reason, WWW-Authenticate."""
    token = bare.token()
    status, headers, body = await bare.call("GET", "/api/v1/agents")
    assert (status, headers["WWW-Authenticate"]) == (401, 'Bearer realm="callcenter"')
    assert "Authorization: Bearer" in body["error"]
    for sent in ({"Authorization": "Bearer nope"}, {"Authorization": "Basic MTAwMTpwdw=="}):
        status, headers, body = await bare.call("GET", "/api/v1/agents", headers=sent)
        assert (status, headers["WWW-Authenticate"]) == (401, 'Bearer realm="callcenter", error="invalid_token"')
        assert "log in again with POST /api/login" in body["error"]
    assert (await bare.call("GET", "/api/v1/agents", token))[0] == 200
    bare.clock.advance(3600)
    status, _, body = await bare.call("GET", "/api/v1/agents", token)
    assert status == 401 and "expired" in body["error"]


@pytest_twisted.ensureDeferred
async def test_the_session_cookie_is_not_accepted(bare):
    """Only the Authorization header authenticates (no cookie: a browser cannot be made to call the API)."""
    status, _, _ = await bare.call("GET", "/api/v1/agents", headers={"Cookie": f"cc_session={bare.token()}"})
    assert status == 401


# -- paths, methods, bodies -------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_unknown_paths_are_404_and_other_methods_405_with_allow(bare):
    token = bare.token()
    for path in ("/", "/api", "/api/v1", "/api/v2/agents", "/api/v1/nothing", "/api/v1/customers/abc",
                 "/api/v1/customers/0", "/api/v1/customers/5/orders", "/api/v1/contacts", "/api/v1/tickets/x"):
        status, _, body = await bare.call("GET", path, token)
        assert (status, body) == (404, {"error": "no such API path"}), path
    for method, path, allow in (("DELETE", "/api/v1/tickets/7", "GET, PATCH"), ("GET", "/api/v1/tickets", "POST"),
                                ("POST", "/api/v1/queues", "GET"), ("PUT", "/api/v1/customers/3", "GET"),
                                ("HEAD", "/api/v1/agents", "GET")):
        if method == "HEAD":
            status, headers, body = await _head(bare, path, token)
        else:
            status, headers, body = await bare.call(method, path, token, raw=b"{}" if method != "GET" else None)
        assert (status, headers["Allow"]) == (405, allow), (method, path)
    assert (await bare.call("GET", "/api/v1/agents/", token))[0] == 200  # a trailing slash is the same path


async def _head(lab, path, token):
    host, port = lab.service.address

    def run():
        req = urllib.request.Request(f"http://{host}:{port}{path}", method="HEAD",
                                     headers={"Authorization": f"Bearer {token}"})
        try:
            urllib.request.urlopen(req, timeout=10)
        except urllib.error.HTTPError as err:
            return err.code, err.headers, None
        raise AssertionError("HEAD was answered 2xx")
    return await threads.deferToThread(run)


@pytest_twisted.ensureDeferred
async def test_bodies_that_are_not_one_json_object_are_refused_with_a_reason(bare):
    token = bare.token()
    cases = [(b"{nope", 400, "the body is not JSON"), (b"[1, 2]", 400, "the body must be a JSON object"),
             (b"", 400, "send a JSON object in the body"), (b'{"subject": NaN}', 400, "NaN is not a JSON number"),
             ('{"subject": "é"}'.encode("latin-1"), 400, "the body is not UTF-8"),
             (b"[" * 100_000, 413, f"the body is larger than {MAX_BODY} bytes"),
             (b"[" * 60_000, 400, "the body is nested too deeply"),
             (json.dumps({"subject": "x" * MAX_BODY}).encode(), 413, "larger than")]
    for raw, status, reason in cases:
        got, _, body = await bare.call("POST", "/api/v1/tickets", token, raw=raw)
        assert got == status and reason in body["error"], (raw[:20], got, body)
    got, _, body = await bare.call("POST", "/api/v1/tickets", token, raw=b"subject=x",
                                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (got, body) == (415, {"error": "send the body as JSON with Content-Type: application/json"})


@pytest_twisted.ensureDeferred
async def test_every_answer_is_json_that_is_not_cached_or_sniffed_and_has_no_cors(bare):
    for token in (None, bare.token()):
        _, headers, _ = await bare.call("GET", "/api/v1/queues", token, headers={"Origin": "https://evil.example"})
        assert headers["Cache-Control"] == "no-store" and headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Access-Control-Allow-Origin"] is None and "Twisted" not in headers["Server"]


@pytest_twisted.ensureDeferred
async def test_stopping_closes_open_connections_and_leaves_no_timer():
    """A keep-alive connection (here: half a request) is closed by stop; no delayed call is left behind."""
    calls_before = set(reactor.getDelayedCalls())
    lab = Lab(None)
    await lab.service.startService()
    client = socket.create_connection(lab.service.address, timeout=5)
    try:
        client.sendall(b"GET /api/v1/agents HTTP/1.1\r\nHost: x\r\n")
        await task.deferLater(reactor, 0.05)
        await lab.service.stopService()
        assert await threads.deferToThread(client.recv, 100) == b""
    finally:
        client.close()
    await task.deferLater(reactor, 0)
    assert [c for c in reactor.getDelayedCalls() if c not in calls_before and c.active()] == []


# -- queue and agent status: what the session may see ----------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_queue_and_agent_status_follow_the_session_scope(bare):
    """What the session's scope shows (admin: all; a supervisor: their groups'; an agent: their queues), and an
    agent never sees other agents, even with a wider scope."""
    bare.scopes["boss"] = Scope(queues=frozenset({"sales", "vip"}), agents=frozenset({"1001", "1003"}))

    async def seen(agent, role):
        token = bare.token(agent, role)
        queues = (await bare.call("GET", "/api/v1/queues", token))[2]["queues"]
        agents = (await bare.call("GET", "/api/v1/agents", token))[2]["agents"]
        return [q["queue"] for q in queues], [a["agent"] for a in agents]

    assert await seen("root", "admin") == (["sales", "support", "vip"], ["1001", "1002", "1003"])
    assert await seen("boss", "supervisor") == (["sales", "vip"], ["1001", "1003"])
    bare.scopes["1002"] = Scope(queues=frozenset({"support", "vip"}), agents=frozenset({"1002"}))
    assert await seen("1002", "agent") == (["support", "vip"], ["1002"])
    bare.scopes["1003"] = Scope(queues=frozenset(), agents=None)
    assert await seen("1003", "agent") == ([], ["1003"])
    status, _, body = await bare.call("GET", "/api/v1/queues", bare.token("root", "admin"))
    assert status == 200 and body["queues"][0] == QUEUES[0]


@pytest_twisted.ensureDeferred
async def test_no_acd_answers_503_and_a_failing_one_500_without_a_traceback(bare, caplog):
    token = bare.token("root", "admin")
    bare.acd = None
    status, _, body = await bare.call("GET", "/api/v1/agents", token)
    assert (status, body) == (503, {"error": "the ACD is not running"})

    class Broken(FakeAcd):
        def queue_rows(self):
            raise KeyError("distributor")

    bare.acd = Broken()
    status, _, body = await bare.call("GET", "/api/v1/queues?", token)
    assert (status, body) == (500, {"error": "internal error; it is logged"})
    assert "REST API GET /api/v1/queues failed" in caplog.text and "KeyError" in caplog.text


@pytest_twisted.ensureDeferred
async def test_no_crm_answers_503(bare):
    status, _, body = await bare.call("GET", "/api/v1/customers/1", bare.token())
    assert (status, body) == (503, {"error": "the CRM is not available; try again later"})


# -- customers and contacts ---------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_customers_are_found_by_phone_and_by_search(lab):
    token = lab.token()
    status, _, body = await lab.call("GET", "/api/v1/customers?phone=%2B86%20139-0013-9000", token)
    assert status == 200 and [(c["id"], c["name"]) for c in body["customers"]] == [(lab.customer_id, "王芳")]
    assert body["customers"][0]["matched_number"] == "+8613900139000"
    for query in ("q=%E7%8E%8B", "q=smith", "q=wang%40example.com&limit=1"):
        status, _, body = await lab.call("GET", f"/api/v1/customers?{query}", token)
        assert status == 200 and len(body["customers"]) == 1, query
    assert (await lab.call("GET", "/api/v1/customers?phone=999999999999", token))[2] == {"customers": []}
    for query, field in (("", None), ("phone=1&q=x", None), ("q=x&limit=0", "limit"), ("q=x&limit=abc", "limit"),
                         ("q=x&sort=name", "sort"), ("q=a&q=b", "q"), ("q=%20", "q"),
                         ("q=x&limit=%C2%B2", "limit"), ("q=x&limit=" + "9" * 5000, "limit")):
        status, _, body = await lab.call("GET", f"/api/v1/customers?{query}", token)
        assert status == 400 and body.get("field") == field, (query, body)


@pytest_twisted.ensureDeferred
async def test_a_customer_view_and_history_and_404_for_an_unknown_customer(lab):
    token = lab.token()
    status, _, body = await lab.call("GET", f"/api/v1/customers/{lab.customer_id}", token)
    customer = body["customer"]
    assert status == 200 and customer["profile"]["name"] == "王芳"
    assert customer["balance"] == "0.00" and customer["open_tickets"] == []
    assert [c["linkedid"] for c in customer["recent_contacts"]] == ["1714.2", "1714.1"]

    status, _, body = await lab.call("GET", f"/api/v1/customers/{lab.customer_id}/history?limit=1", token)
    history = body["history"]
    assert status == 200 and [c["linkedid"] for c in history["contacts"]] == ["1714.2"]
    assert history["next_before"] is not None
    before = urllib.request.quote(history["next_before"])
    status, _, body = await lab.call("GET", f"/api/v1/customers/{lab.customer_id}/history?before={before}", token)
    assert status == 200 and [c["linkedid"] for c in body["history"]["contacts"]] == ["1714.1"]
    status, _, body = await lab.call("GET", f"/api/v1/customers/{lab.customer_id}/history?before=yesterday", token)
    assert status == 400 and body["field"] == "before"

    for path in ("/api/v1/customers/999999", "/api/v1/customers/999999/history"):
        status, _, body = await lab.call("GET", path, token)
        assert (status, body) == (404, {"error": "no customer 999999"}), path
    status, _, body = await lab.call("GET", f"/api/v1/customers/{lab.other_id}/history", token)
    assert status == 200 and body["history"]["contacts"] == [] and body["history"]["tickets"] == []


@pytest_twisted.ensureDeferred
async def test_a_contact_by_its_linkedid(lab):
    token = lab.token("boss", "supervisor")
    status, _, body = await lab.call("GET", "/api/v1/contacts/1714.1", token)
    contact = body["contact"]
    assert status == 200 and (contact["customer_id"], contact["agent"], contact["talk_seconds"]) == (
        lab.customer_id, "1001", 42.0)
    assert contact["caller_name"] == "王芳" and contact["started_at"] == "2026-03-01T09:00:00+00:00"
    status, _, body = await lab.call("GET", "/api/v1/contacts/1714.9", token)
    assert (status, body) == (404, {"error": "no call 1714.9"})


# -- tickets -------------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_ticket_is_opened_once_per_key_then_changed(lab):
    """POST opens (201, Location); the same key answers the same ticket; PATCH changes it; GET shows the history."""
    token = lab.token("1001")
    new = {"subject": "宽带无法上网", "kind": "fault", "description": "光猫红灯 — Zoë", "customer_id": lab.customer_id,
           "call_id": "1714.1", "priority": "high"}
    status, headers, body = await lab.call("POST", "/api/v1/tickets", token, new, headers={"Idempotency-Key": "k-1"})
    ticket = body["ticket"]
    assert status == 201 and headers["Location"] == f"/api/v1/tickets/{ticket['id']}"
    assert (ticket["subject"], ticket["status"], ticket["priority"], ticket["created_by"]) == (
        "宽带无法上网", "open", "high", "1001")
    status, _, again = await lab.call("POST", "/api/v1/tickets", token, {**new, "key": "k-1"})
    assert status == 201 and again["ticket"] == ticket
    status, _, body = await lab.call("POST", "/api/v1/tickets", token, {**new, "subject": "另一件事"},
                                     headers={"Idempotency-Key": "k-1"})
    assert status == 409 and (body["field"], body["ticket_id"]) == ("key", ticket["id"])
    status, _, body = await lab.call("POST", "/api/v1/tickets", token, {**new, "key": "k-2"},
                                     headers={"Idempotency-Key": "k-1"})
    assert status == 400 and body["field"] == "key"

    path = f"/api/v1/tickets/{ticket['id']}"
    boss = lab.token("boss", "supervisor")
    status, _, body = await lab.call("PATCH", path, boss, {"status": "in_progress", "owner": "1002", "note": "跟进"})
    assert status == 200 and (body["ticket"]["status"], body["ticket"]["owner"], body["ticket"]["version"]) == (
        "in_progress", "1002", ticket["version"] + 1)
    status, _, body = await lab.call("PATCH", path, boss, {"status": "reopened"})
    assert (status, body) == (409, {"error": f"ticket {ticket['id']}: cannot go from in_progress to reopened"})
    status, _, body = await lab.call("PATCH", path, boss, {"priority": "low", "version": ticket["version"]})
    assert status == 409 and "version" in body["error"]
    status, _, body = await lab.call("PATCH", path, boss, {"owner": None, "due_at": "2026-06-01T12:00:00+08:00"})
    assert status == 200 and body["ticket"]["owner"] is None
    assert body["ticket"]["due_at"] == "2026-06-01T04:00:00+00:00"

    status, _, body = await lab.call("GET", path, token)
    detail = body["ticket"]
    assert status == 200 and detail["description"] == "光猫红灯 — Zoë" and detail["linkedids"] == ["1714.1"]
    assert [(e["actor"], e["action"]) for e in detail["history"]] == [
        ("1001", "created"), ("1001", "link_contact"), ("boss", "status"), ("boss", "owner"), ("boss", "note"),
        ("boss", "owner"), ("boss", "due_at")]
    status, _, body = await lab.call("GET", f"/api/v1/customers/{lab.customer_id}", token)
    assert [t["id"] for t in body["customer"]["open_tickets"]] == [ticket["id"]]


@pytest_twisted.ensureDeferred
async def test_ticket_fields_of_the_wrong_type_or_value_are_named(lab):
    token = lab.token()
    status, _, answer = await lab.call("POST", "/api/v1/tickets", token, {"kind": "fault"})
    assert (status, answer) == (400, {"error": "'subject' must be a text of 1 to 200 characters", "field": "subject"})
    cases = [({"subject": 5}, "subject"), ({"subject": "  "}, "subject"),
             ({"customer_id": "7"}, "customer_id"), ({"customer_id": True}, "customer_id"),
             ({"priority": "whenever"}, "priority"), ({"kind": ["fault"]}, "kind"), ({"due_at": "tomorrow"}, "due_at"),
             ({"due_at": "2026-06-01T12:00"}, "due_at"), ({"colour": "red"}, "colour"),
             ({"customer_id": 999999}, "customer_id"), ({"subject": "x" * 201}, "subject"),
             ({"subject": "\ud800"}, "subject")]
    for body, field in cases:
        body = {"subject": "x", **body}
        status, _, answer = await lab.call("POST", "/api/v1/tickets", token, body)
        assert status == 400 and answer["field"] == field, (body, answer)
    status, _, answer = await lab.call("POST", "/api/v1/tickets", token, {"subject": "x"})
    assert status == 201 and answer["ticket"]["kind"] == "consultation"
    path = f"/api/v1/tickets/{answer['ticket']['id']}"
    for body, field in (({"subject": "y"}, "subject"), ({"status": 3}, "status"), ({"version": "1"}, "version"),
                        ({"owner": ""}, "owner"), ({"status": "bogus"}, "status"), ({}, None)):
        status, _, answer = await lab.call("PATCH", path, token, body)
        assert status == 400 and answer.get("field") == field, (body, answer)
    status, _, answer = await lab.call("PATCH", "/api/v1/tickets/999999", token, {"status": "closed"})
    assert (status, answer) == (404, {"error": "no ticket 999999"})
    assert (await lab.call("GET", "/api/v1/tickets/999999", token))[0] == 404


@pytest_twisted.ensureDeferred
async def test_utf8_text_round_trips_unescaped(lab):
    """Chinese, accents and emoji go in as UTF-8 JSON and come back as UTF-8 bytes, not \\u escapes."""
    token = lab.token()
    subject = "客户投诉：网速慢 — Zoë 👍"
    host, port = lab.service.address

    def post_raw():
        req = urllib.request.Request(f"http://{host}:{port}/api/v1/tickets", method="POST",
                                     data=json.dumps({"subject": subject}, ensure_ascii=False).encode("utf-8"),
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json; charset=utf-8"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()

    status, raw = await threads.deferToThread(post_raw)
    assert status == 201 and subject.encode("utf-8") in raw
    ticket_id = json.loads(raw)["ticket"]["id"]
    assert (await lab.call("GET", f"/api/v1/tickets/{ticket_id}", token))[2]["ticket"]["subject"] == subject


@pytest_twisted.ensureDeferred
async def test_a_stopped_crm_answers_503_and_the_failure_is_logged(lab, caplog):
    """No store (CRM not running), or a store whose database pool has stopped: 503, logged."""
    caplog.set_level(logging.INFO)
    token = lab.token()
    store = lab.crm.store
    await lab.crm.stopService()
    status, _, body = await lab.call("POST", "/api/v1/tickets", token, {"subject": "x"})
    assert (status, body) == (503, {"error": "the CRM is not available; try again later"})
    assert "REST API POST /api/v1/tickets -> 503 (1001" in caplog.text
    lab.store = lambda: store
    status, _, body = await lab.call("GET", f"/api/v1/customers/{lab.customer_id}", token)
    assert (status, body) == (503, {"error": "the CRM is not available; try again later"})
    assert "the CRM failed: RuntimeError: database pool is not running" in caplog.text


@pytest_twisted.ensureDeferred
async def test_a_write_the_crm_does_not_answer_in_time_gets_503_and_a_retry_with_its_key_gets_the_ticket(
        tmp_path, crm_templates):  # noqa: F811
    """A write waiting on a database lock times out (503); it still lands once the lock goes, and the retry
    with the same Idempotency-Key answers that ticket instead of opening a second one."""
    import sqlite3

    url = crm_templates.sqlite(tmp_path / "crm.db")
    crm = CrmService(reactor, CrmConfig(url=url, journal=str(tmp_path / "contacts.journal")))
    await crm.startService()
    lab = Lab(crm, crm_timeout=0.3)
    await lab.service.startService()
    locker = sqlite3.connect(str(tmp_path / "crm.db"), isolation_level=None)
    try:
        token = lab.token()
        locker.execute("BEGIN IMMEDIATE")
        status, _, body = await lab.call("POST", "/api/v1/tickets", token, {"subject": "急"},
                                         headers={"Idempotency-Key": "retry-1"})
        assert (status, body) == (503, {"error": "the CRM did not answer in time; try again later"})
        locker.execute("ROLLBACK")
        await crm.pool.drain()
        status, _, landed = await lab.call("GET", "/api/v1/tickets/1", token)  # the timed-out request's ticket
        assert status == 200 and landed["ticket"]["subject"] == "急"
        status, _, retried = await lab.call("POST", "/api/v1/tickets", token, {"subject": "急"},
                                            headers={"Idempotency-Key": "retry-1"})
        assert status == 201 and retried["ticket"]["id"] == 1
        assert (await lab.call("GET", "/api/v1/tickets/2", token))[0] == 404
    finally:
        locker.close()
        await lab.service.stopService()
        await crm.stopService()


# -- configuration and the daemon ------------------------------------------------------------------------------


def test_the_api_is_off_unless_enabled_and_its_port_is_checked():
    base = {"asterisk": {"ami_secret": "s"}}
    cfg = build_config(base, environ={})
    assert (cfg.desktop.api_enabled, cfg.desktop.api_bind, cfg.desktop.api_port) == (False, "127.0.0.1", 8081)
    on = build_config({**base, "desktop": {"api_enabled": True, "api_port": 0}}, environ={})
    assert on.desktop.api_enabled and on.desktop.api_port == 0
    with pytest.raises(ConfigError) as info:
        build_config({**base, "desktop": {"api_enabled": "yes", "api_port": -1, "api_bind": ""}}, source="cc.toml",
                     environ={})
    assert [str(p) for p in info.value.problems] == [
        "cc.toml: desktop.api_bind: must not be empty",
        "cc.toml: desktop.api_enabled: expected a boolean (true or false), got string 'yes'",
        "cc.toml: desktop.api_port: expected an integer from 0 to 65535, got -1"]
    for desktop, reason in (({"api_port": 8080}, "same address as desktop.port (8080)"),
                            ({"api_port": 4573, "api_bind": "0.0.0.0"}, "same address as asterisk.agi_port (4573)")):
        with pytest.raises(ConfigError) as info:
            build_config({**base, "desktop": {"api_enabled": True, **desktop}}, source="cc.toml", environ={})
        assert [str(p) for p in info.value.problems] == [f"cc.toml: desktop.api_port: {reason}"]
    build_config({**base, "desktop": {"api_port": 8080}}, environ={})  # off: not checked


@pytest_twisted.ensureDeferred
async def test_the_daemon_serves_the_api_to_a_desktop_login(tmp_path):
    """build_root: log in on the desktop port, use the token on the REST port; off: no REST service."""
    from callcenter.app import build_root
    from crm_core.acd_config import NewAgent, thd_save_agent
    from tests.test_daemon import daemon_config, refuses
    from tests.test_desktop_server import basic, post

    assert build_root(daemon_config(tmp_path), reactor).rest is None
    cfg = daemon_config(tmp_path, desktop={"api_enabled": True, "api_port": 0})
    root = build_root(cfg, reactor)
    await root.startService()
    try:
        await threads.deferToThread(thd_save_agent, root.crm.engine,
                                    NewAgent("1001", "Ann", password="ann-secret", role="supervisor"))
        dhost, dport = root.desktop.address
        status, _, login = await threads.deferToThread(post, f"http://{dhost}:{dport}/api/login",
                                                       basic("1001", "ann-secret"))
        assert status == 200
        host, port = root.rest.address
        status, _, body = await threads.deferToThread(
            _exchange, f"http://{host}:{port}/api/v1/customers?q=nobody", "GET",
            {"Authorization": f"Bearer {login['token']}"}, None)
        assert (status, body) == (200, {"customers": []})
        status, _, body = await threads.deferToThread(
            _exchange, f"http://{host}:{port}/api/v1/queues", "GET", {"Authorization": f"Bearer {login['token']}"},
            None)
        assert status == 200 and isinstance(body["queues"], list)
    finally:
        await root.stopService()
    assert refuses(port)
