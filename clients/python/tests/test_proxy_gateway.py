"""The proxy integrations for real: the handlers of ``proxy_backends`` served
by uvicorn (FastAPI), by Django's ``runserver`` (WSGI) and by Django under
uvicorn (ASGI), each the proxy backend
of a real gateway, driven by real WebSocket clients through the gateway
(docs/proxy.md): connect accepted with a user and refused with close 1008,
subscribe allowed and refused, rpc results and errors with the backend's
codes, refresh extending one session and letting another expire (4003),
the unsubscribe and disconnect notifications, and a gateway with the wrong
secret getting nothing (close 1013)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import (
    Gateway,
    Server,
    Ws,
    close_of,
    free_port,
    loud_skip,
    runserver_command,
    uvicorn_command,
)

from switchboard_rt.proxy import sign

pytestmark = [pytest.mark.gateway, pytest.mark.anyio]

SECRET = "proxy-test-secret-0123456789abcdef"
TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"


def proxy_config(port: int) -> str:
    base = f"http://127.0.0.1:{port}/switchboard"
    return f"""
[proxy]
secret_env = "SWITCHBOARD_PROXY_SECRET"
timeout = "5s"
connect = {{ url = "{base}/connect" }}
refresh = {{ url = "{base}/refresh", before = "3s" }}
subscribe = {{ url = "{base}/subscribe", channels = ["team:*"] }}
rpc = {{ url = "{base}/rpc", actions = ["orders.*"] }}
disconnect = {{ url = "{base}/disconnect" }}
unsubscribe = {{ url = "{base}/unsubscribe" }}
"""


@dataclass
class Backend:
    name: str
    gateway: Gateway
    server: Server

    @property
    def url(self) -> str:
        return self.server.url

    def logs(self) -> str:
        return f"{self.server.logs()}\n--- gateway ---\n{self.gateway.logs()}"

    def seen(self) -> dict[str, Any]:
        answer = httpx.get(f"{self.url}/seen", timeout=5)
        answer.raise_for_status()
        seen: dict[str, Any] = answer.json()
        return seen


def framework_available(name: str) -> None:
    modules = {
        "fastapi": ("fastapi", "uvicorn"),
        "django": ("django",),
        "django-asgi": ("django", "uvicorn"),
    }[name]
    for module in modules:
        try:
            __import__(module)
        except ImportError:
            loud_skip(f"{module} is not installed: pip install -e '.[dev]'")


@pytest.fixture(scope="module", params=["fastapi", "django", "django-asgi"])
def backend(
    request: pytest.FixtureRequest,
    switchboard_bin: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Backend]:
    name: str = request.param
    framework_available(name)
    tmp = tmp_path_factory.mktemp(f"proxy-{name}")
    port = free_port()
    config = tmp / "switchboard.toml"
    config.write_text(proxy_config(port))
    gateway = Gateway(
        ["--config", str(config)], env={"SWITCHBOARD_PROXY_SECRET": SECRET}, log_dir=tmp
    )
    command = {
        "fastapi": uvicorn_command("proxy_backends.fastapi_app:app", port),
        "django": runserver_command(port),
        "django-asgi": uvicorn_command("proxy_backends.django_asgi:application", port),
    }[name]
    try:
        server = Server(
            command,
            port,
            cwd=TESTS,
            env={
                "PYTHONPATH": os.pathsep.join([str(TESTS), str(SRC)]),
                "SWITCHBOARD_PROXY_SECRET": SECRET,
                "SWITCHBOARD_URL": gateway.url,
                "DJANGO_SETTINGS_MODULE": "proxy_backends.django_settings",
            },
            log=tmp / f"{name}.log",
        )
    except BaseException:
        gateway.stop()
        raise
    yield Backend(name, gateway, server)
    server.stop()
    gateway.stop()


async def connect(backend: Backend, session: str | None) -> Ws:
    headers = {"Cookie": f"session={session}"} if session else None
    return await Ws.connect(backend.gateway, headers=headers)


async def action(ws: Ws, id: str, name: str, data: Any = None) -> dict[str, Any]:
    await ws.send({"type": "ACTION", "id": id, "payload": {"action": name, "data": data}})
    while True:
        reply = await ws.next_of("ACTION_RESULT", "ERROR")
        if reply.get("correlation_id") == id:
            return reply


async def test_connect_accepts_a_user_with_channels_and_refuses_with_1008(
    backend: Backend,
) -> None:
    alice = await connect(backend, "s-alice")
    assert alice.user == "alice", backend.logs()
    inbox = await alice.next_of("SUBSCRIBE_SUCCESS")
    assert inbox["payload"]["channel"] == "user:alice:orders"
    await alice.close()
    # No session: the backend's Refuse, as the close a browser can read.
    assert await close_of(backend.gateway) == (1008, "Please sign in")
    assert await close_of(backend.gateway, headers={"Cookie": "session=s-forged"}) == (
        1008,
        "Please sign in",
    )
    # None from the handler: an anonymous connection.
    anonymous = await connect(backend, "anonymous")
    assert anonymous.user is None
    reply = await action(anonymous, "a0", "orders.create", {"item": "tea"})
    assert reply["type"] == "ERROR"
    assert reply["payload"]["code"] == "sign_in_required"
    await anonymous.close()


async def test_subscribe_is_allowed_with_data_or_refused(backend: Backend) -> None:
    alice = await connect(backend, "s-alice")
    await alice.send({"type": "SUBSCRIBE", "id": "s1", "payload": {"subscriptions": ["team:red"]}})
    red = await alice.next_of("SUBSCRIBE_SUCCESS", "SUBSCRIBE_FAILURE")
    while red["payload"]["channel"] != "team:red":
        red = await alice.next_of("SUBSCRIBE_SUCCESS", "SUBSCRIBE_FAILURE")
    assert red["type"] == "SUBSCRIBE_SUCCESS", red
    assert red["payload"]["data"] == {"team": "red", "user": "alice"}
    await alice.send({"type": "SUBSCRIBE", "id": "s2", "payload": {"subscriptions": ["team:blue"]}})
    blue = await alice.next_of("SUBSCRIBE_FAILURE")
    assert blue["payload"]["channel"] == "team:blue"
    assert blue["payload"]["code"] == "forbidden"
    assert blue["payload"]["reason"] == "not a member of team blue"
    await alice.close()


async def test_rpc_results_and_errors_carry_the_backends_codes(backend: Backend) -> None:
    alice = await connect(backend, "s-alice")
    created = await action(alice, "a1", "orders.create", {"item": "tea"})
    assert created["type"] == "ACTION_RESULT", created
    assert created["payload"] == {
        "action": "orders.create",
        "data": {"order_id": 17, "item": "tea"},
    }
    # The async handler published through the gateway (Event.send_async).
    event = await alice.receive()
    assert event["type"] == "EVENT"
    assert event["payload"]["event"] == "order.created"
    assert event["payload"]["channel"] == "user:alice:orders"
    # The plain handler's Notification(...).send(room=...), the default client.
    notified = await action(alice, "a2", "orders.notify")
    assert notified["type"] == "ACTION_RESULT"
    assert notified["payload"]["data"] is None
    notification = await alice.receive()
    assert notification["type"] == "NOTIFICATION"
    assert notification["payload"]["title"] == "Order"
    assert notification["payload"]["level"] == "success"

    invalid = await action(alice, "a3", "orders.create", {"item": 5})
    assert invalid["type"] == "ERROR"
    assert invalid["payload"]["code"] == "invalid_order"
    assert invalid["payload"]["message"] == "item (string) please"
    busy = await action(alice, "a4", "orders.cancel")
    assert busy["payload"] == {
        "code": "out_of_stock",
        "message": "orders.cancel: only 2 left",
        "temporary": True,
    }
    refused = await action(alice, "a5", "orders.refuse")
    assert refused["payload"]["code"] == "action_failed"
    assert refused["payload"]["message"] == "No"
    await alice.close()


async def test_refresh_extends_one_session_and_lets_the_other_expire(
    backend: Backend,
) -> None:
    rita = await connect(backend, "s-rita")
    nora = await connect(backend, "s-nora")
    assert rita.ack["payload"]["expires_at"] is not None
    # nora's refresh answers None: closed 4003 at her expiry (5 s).
    code, _ = await nora.closed(timeout=10)
    assert code == 4003
    # rita's was extended by an hour: still open, and answering.
    reply = await action(rita, "r1", "orders.create", {"item": "tea"})
    assert reply["type"] == "ACTION_RESULT"
    refreshes = {r["user"]: r for r in backend.seen()["refreshes"]}
    assert set(refreshes) >= {"rita", "nora"}
    assert refreshes["rita"]["expires_at"] == pytest.approx(
        rita.ack["payload"]["expires_at"], abs=0.01
    )
    await rita.close()


async def test_unsubscribe_and_disconnect_reach_the_backend(backend: Backend) -> None:
    alice = await connect(backend, "s-alice")
    await alice.subscribe("team:red")
    await alice.send(
        {"type": "UNSUBSCRIBE", "id": "u1", "payload": {"subscriptions": ["team:red"]}}
    )
    ack = await alice.next_of("UNSUBSCRIBE_ACK")
    assert ack["payload"]["subscriptions"] == ["team:red"]
    await alice.connection.close(1000, "bye")
    deadline = time.monotonic() + 10
    while True:
        seen = backend.seen()
        disconnects = [d for d in seen["disconnects"] if d["connection"] == alice.id]
        unsubscribes = [u for u in seen["unsubscribes"] if u["connection"] == alice.id]
        if (disconnects and unsubscribes) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert unsubscribes, f"no unsubscribe for {alice.id}: {seen}"
    assert unsubscribes[0]["channel"] == "team:red"
    assert unsubscribes[0]["user"] == "alice"
    assert disconnects, f"no disconnect for {alice.id}: {seen}"
    (disconnect,) = disconnects
    assert disconnect["code"] == 1000
    assert disconnect["user"] == "alice"
    assert disconnect["meta"] == {"teams": ["red"]}
    assert disconnect["channels"] == ["user:alice:orders"]


async def test_calls_without_the_right_signature_are_refused(backend: Backend) -> None:
    body = b'{"action":"orders.create","data":{"item":"tea"},"connection":"gw/1","user":"eve",'
    body += b'"meta":null,"client":{"ip":"127.0.0.1"},"endpoint":"/ws"}'
    async with httpx.AsyncClient(base_url=backend.url, timeout=5) as http:
        for signature in (None, sign("not-the-secret", body), sign(SECRET, body + b" ")):
            headers = {"content-type": "application/json"}
            if signature is not None:
                headers["x-switchboard-signature"] = signature
            answer = await http.post("/switchboard/rpc", content=body, headers=headers)
            assert answer.status_code == 401, (signature, answer.text)
        good = {"x-switchboard-signature": sign(SECRET, body)}
        answer = await http.post("/switchboard/rpc", content=body, headers=good)
        assert answer.status_code == 200
        assert answer.json() == {"result": {"order_id": 17, "item": "tea"}}
        assert (await http.get("/switchboard/rpc")).status_code == 405
    # A gateway with another secret: the backend answers 401, a failure of
    # the backend, and the client is told to retry (close 1013).
    tmp = backend.server.log.parent
    wrong = Gateway(
        ["--config", str(tmp / "switchboard.toml")],
        env={"SWITCHBOARD_PROXY_SECRET": "a-different-secret-0123456789"},
        log_dir=tmp,
    )
    try:
        code, reason = await close_of(wrong, headers={"Cookie": "session=s-alice"})
        assert code == 1013
        assert reason == "Authentication unavailable: retry with backoff"
    finally:
        wrong.stop()
