"""switchboard_rt.proxy without a gateway: the signature check, the typed
models against docs/proxy.md's documented bodies and answers, and the
registry's dispatch (sync and async handlers, refusals, patterns)."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from switchboard_rt.proxy import (
    ClientInfo,
    ConnectRequest,
    ConnectResult,
    DisconnectEvent,
    Proxy,
    ProxyKind,
    RefreshRequest,
    RefreshResult,
    Refuse,
    RpcError,
    RpcRequest,
    RpcResult,
    SubscribeRequest,
    SubscribeResult,
    UnsubscribeEvent,
    sign,
    verify_signature,
)

SECRET = "unit-test-proxy-secret"
DOC = Path(__file__).resolve().parents[3] / "docs/proxy.md"


def doc_blocks(tag: str) -> list[Any]:
    return [
        json.loads(block)
        for block in re.findall(rf"```json {tag}\n(.*?)```", DOC.read_text(), flags=re.S)
    ]


def signed(body: Any, secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    return raw, {"x-switchboard-signature": sign(secret, raw), "x-request-id": "abc-1"}


def call(proxy: Proxy, kind: str, body: Any) -> tuple[int, Any]:
    raw, headers = signed(body)
    answer = asyncio.run(proxy.handle(kind, raw, headers))
    return answer.status, json.loads(answer.body)


def call_sync(proxy: Proxy, kind: str, body: Any) -> tuple[int, Any]:
    raw, headers = signed(body)
    answer = proxy.handle_sync(kind, raw, headers)
    return answer.status, json.loads(answer.body)


CALLER = {
    "connection": "gw-1/42",
    "user": "alice",
    "meta": {"teams": ["red"]},
    "client": {"ip": "203.0.113.7"},
    "endpoint": "/ws",
}
CONNECT = {
    "client": {"ip": "203.0.113.7"},
    "endpoint": "/ws",
    "path": "/ws",
    "path_params": {},
    "headers": {"cookie": "session=s-alice; theme=dark"},
    "token": None,
}


# ------------------------------------------------------------------ signature


def test_the_signature_is_hmac_sha256_in_hex() -> None:
    # RFC 4231 test case 2, as the gateway's own test (proxy/client.rs).
    assert sign(b"Jefe", b"what do ya want for nothing?") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )
    assert sign("Jefe", b"what do ya want for nothing?") == sign(
        b"Jefe", b"what do ya want for nothing?"
    )


def test_verify_signature_accepts_only_the_exact_signature() -> None:
    body = b'{"action":"orders.create","data":{"item":"tea"}}'
    good = sign(SECRET, body)
    assert verify_signature(SECRET, body, good)
    assert verify_signature(SECRET.encode(), body, good)
    assert not verify_signature(SECRET, body, None)  # missing
    assert not verify_signature(SECRET, body, "")
    assert not verify_signature("another-secret", body, good)  # wrong secret
    assert not verify_signature(SECRET, body.replace(b"tea", b"tee"), good)  # tampered body
    assert not verify_signature(SECRET, body + b" ", good)
    assert not verify_signature(SECRET, body, good.removeprefix("sha256="))  # no scheme
    assert not verify_signature(SECRET, body, "sha1=" + good.removeprefix("sha256="))
    assert not verify_signature(SECRET, body, good[:-1] + ("0" if good[-1] != "0" else "1"))
    assert not verify_signature(SECRET, body, good + "é")  # not ASCII


def test_bad_signatures_never_reach_a_handler() -> None:
    proxy = Proxy(SECRET)
    seen: list[RpcRequest] = []

    @proxy.rpc("orders.create")
    def create(request: RpcRequest) -> int:
        seen.append(request)
        return 1

    body = json.dumps({"action": "orders.create", "data": None, **CALLER}).encode()
    for headers in (
        {},
        {"x-switchboard-signature": sign("wrong", body)},
        {"x-switchboard-signature": sign(SECRET, body + b"\n")},
    ):
        answer = asyncio.run(proxy.handle("rpc", body, headers))
        assert answer.status == 401, headers
        assert proxy.handle_sync("rpc", body, headers).status == 401
    assert seen == []
    answer = asyncio.run(proxy.handle("rpc", body, {"x-switchboard-signature": sign(SECRET, body)}))
    assert (answer.status, json.loads(answer.body)) == (200, {"result": 1})
    assert len(seen) == 1


def test_the_secret_comes_from_the_environment_or_must_be_waived(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SWITCHBOARD_PROXY_SECRET", raising=False)
    with pytest.raises(ValueError, match="no proxy secret"):
        Proxy()
    unsigned = Proxy(verify_signature=False)

    @unsigned.rpc()
    def echo(request: RpcRequest) -> Any:
        return request.data

    body = json.dumps({"action": "x", "data": [1], **CALLER}).encode()
    assert asyncio.run(unsigned.handle("rpc", body, {})).status == 200
    monkeypatch.setenv("SWITCHBOARD_PROXY_SECRET", SECRET)
    from_env = Proxy()
    from_env.rpc()(echo)
    assert asyncio.run(from_env.handle("rpc", body, {})).status == 401
    raw, headers = signed({"action": "x", "data": [1], **CALLER})
    assert json.loads(asyncio.run(from_env.handle("rpc", raw, headers)).body) == {"result": [1]}


# ------------------------------------------------------------------ the documented bodies


def test_the_documented_calls_parse_into_the_models() -> None:
    connect, refresh, subscribe, rpc, disconnect, unsubscribe = doc_blocks("proxy-call")

    c = ConnectRequest.from_json(connect, "r-1")
    assert c == ConnectRequest(
        request_id="r-1",
        client=ClientInfo("203.0.113.7"),
        endpoint="/ws/{org}",
        path="/ws/acme",
        path_params={"org": "acme"},
        headers={"cookie": "session=s-alice", "x-tenant": "acme"},
        token=None,
    )
    assert c.cookies == {"session": "s-alice"}

    r = RefreshRequest.from_json(refresh)
    assert (r.connection, r.user, r.meta, r.expires_at) == (
        "gw-1/42",
        "alice",
        {"plan": "pro"},
        1763773200.0,
    )
    assert r.client.ip == "203.0.113.7"
    assert r.endpoint == "/ws"

    s = SubscribeRequest.from_json(subscribe)
    assert (s.channel, s.user, s.meta) == ("team:red", "alice", {"teams": ["red"]})

    a = RpcRequest.from_json(rpc)
    assert (a.action, a.data, a.connection) == (
        "orders.create",
        {"item": "tea", "quantity": 2},
        "gw-1/42",
    )

    (d,) = (DisconnectEvent.from_json(e) for e in disconnect["events"])
    assert (d.code, d.reason, d.duration, d.channels, d.at) == (
        1000,
        "client disconnected",
        754.2,
        ("user:alice:orders", "team:red"),
        1763770354.6,
    )
    (u,) = (UnsubscribeEvent.from_json(e) for e in unsubscribe["events"])
    assert (u.channel, u.meta, u.at) == ("team:red", None, 1763770300.1)


def test_the_documented_answers_are_what_the_models_write() -> None:
    allow, refuse = doc_blocks("proxy-answer")
    assert ConnectResult(
        "alice",
        expires_at=1763773200,
        permissions=["orders:create"],
        admin=False,
        channels=["user:alice:orders"],
        meta={"plan": "pro", "teams": ["red"]},
    ).to_json() == {"result": {k: v for k, v in allow["result"].items() if k != "admin"}}
    assert ConnectResult("root", admin=True).to_json() == {
        "result": {"user": "root", "admin": True}
    }
    assert ConnectResult("").to_json() == {"result": {"user": None}}  # anonymous
    assert Refuse("Please sign in", status=401).to_json() == refuse
    assert Refuse("No").to_json() == {"error": {"message": "No"}}
    with pytest.raises(ValueError, match="401, 403"):
        Refuse("x", status=500)
    aware = datetime(2025, 11, 22, 1, 0, tzinfo=timezone.utc)
    assert ConnectResult("a", expires_at=aware).to_json()["result"]["expires_at"] == 1763773200
    with pytest.raises(ValueError, match="aware"):
        ConnectResult("a", expires_at=datetime(2025, 1, 1)).to_json()
    with pytest.raises(TypeError, match="not a str"):
        ConnectResult("a", channels="user:a").to_json()


def test_the_documented_rpc_and_subscribe_answers() -> None:
    assert RpcError("out_of_stock", "Only 2 left").to_json() == {
        "error": {"code": "out_of_stock", "message": "Only 2 left"}
    }
    assert RpcError("busy", "Try again", temporary=True).to_json() == {
        "error": {"code": "busy", "message": "Try again", "temporary": True}
    }
    for bad in ("", "1abc", "has space", "x" * 65, "é"):
        with pytest.raises(ValueError, match="invalid rpc error code"):
            RpcError(bad, "m")
    RpcError("a" * 64, "m")
    RpcError("a.b:c-d_e9", "m")
    assert SubscribeResult().to_json() == {"result": {}}
    assert SubscribeResult({"members": 3}).to_json() == {"result": {"data": {"members": 3}}}
    assert RefreshResult(1763776800).to_json() == {"result": {"expires_at": 1763776800}}
    assert RefreshResult(1763776800, meta={"plan": "max"}).to_json() == {
        "result": {"expires_at": 1763776800, "meta": {"plan": "max"}}
    }
    assert RefreshResult(expired=True).to_json() == {"result": {"expired": True}}
    assert RpcResult(None).to_json() == {"result": None}


def test_bodies_that_are_not_documented_calls_answer_400() -> None:
    proxy = Proxy(SECRET)

    @proxy.rpc()
    def any_action(request: RpcRequest) -> None:
        return None

    for body in (
        [1, 2],
        {"data": 1, **CALLER},  # no action
        {"action": 7, **CALLER},
        {"action": "a", **CALLER, "client": "1.2.3.4"},
        {"action": "a", **CALLER, "user": 5},
    ):
        status, answer = call(proxy, "rpc", body)
        assert status == 400, body
        assert "detail" in answer
    raw = b"not json"
    headers = {"x-switchboard-signature": sign(SECRET, raw)}
    assert asyncio.run(proxy.handle("rpc", raw, headers)).status == 400
    # Unknown fields are ignored (the gateway may add some).
    assert call(proxy, "rpc", {"action": "a", "new_field": 1, **CALLER}) == (200, {"result": None})


# ------------------------------------------------------------------ dispatch


def test_connect_handlers_answer_user_anonymous_result_or_refusal() -> None:
    proxy = Proxy(SECRET)

    @proxy.connect
    async def connect(request: ConnectRequest) -> str | ConnectResult | None:
        session = request.cookies.get("session")
        if session == "s-alice":
            return "alice"
        if session == "s-full":
            return ConnectResult("bob", channels=["user:bob"], meta={"n": 1})
        if session == "anon":
            return None
        raise Refuse("Please sign in", status=401)

    assert call(proxy, "connect", CONNECT) == (200, {"result": {"user": "alice"}})
    full = {**CONNECT, "headers": {"cookie": "session=s-full"}}
    assert call(proxy, "connect", full) == (
        200,
        {"result": {"user": "bob", "channels": ["user:bob"], "meta": {"n": 1}}},
    )
    anon = {**CONNECT, "headers": {"cookie": "session=anon"}}
    assert call(proxy, "connect", anon) == (200, {"result": {"user": None}})
    stranger = {**CONNECT, "headers": {}}
    assert call(proxy, "connect", stranger) == (
        200,
        {"error": {"message": "Please sign in", "status": 401}},
    )
    with pytest.raises(ValueError, match="already registered"):
        proxy.connect(connect)


def test_a_handler_returning_the_wrong_type_is_an_error_not_an_answer() -> None:
    proxy = Proxy(SECRET)

    @proxy.connect
    def connect(request: ConnectRequest) -> Any:
        return True  # python-socketio style; not an answer here

    with pytest.raises(TypeError, match="returns a user id"):
        call(proxy, "connect", CONNECT)


def test_rpc_dispatch_exact_then_patterns_then_unknown_action() -> None:
    proxy = Proxy(SECRET)

    @proxy.rpc("orders.create")
    async def create(request: RpcRequest) -> dict[str, Any]:
        return {"order_id": 17, "by": request.user, "item": request.data["item"]}

    @proxy.rpc("orders.*")
    def other_orders(request: RpcRequest) -> RpcResult:
        # A plain handler runs in a worker thread under handle().
        assert threading.current_thread() is not threading.main_thread()
        raise RpcError("no_such_order_action", f"no {request.action}", temporary=True)

    @proxy.rpc("chat.*")
    def chat(request: RpcRequest) -> RpcResult:
        raise Refuse("No")

    def body(action: str) -> dict[str, Any]:
        return {"action": action, "data": {"item": "tea"}, **CALLER}

    assert call(proxy, "rpc", body("orders.create")) == (
        200,
        {"result": {"order_id": 17, "by": "alice", "item": "tea"}},
    )
    assert call(proxy, "rpc", body("orders.cancel")) == (
        200,
        {
            "error": {
                "code": "no_such_order_action",
                "message": "no orders.cancel",
                "temporary": True,
            }
        },
    )
    assert call(proxy, "rpc", body("chat.send")) == (200, {"error": {"message": "No"}})
    assert call(proxy, "rpc", body("billing.pay")) == (
        200,
        {"error": {"code": "unknown_action", "message": "Unknown action billing.pay"}},
    )

    @proxy.rpc()
    def fallback(request: RpcRequest) -> RpcResult:
        return RpcResult({"fallback": request.action})

    assert call(proxy, "rpc", body("billing.pay")) == (
        200,
        {"result": {"fallback": "billing.pay"}},
    )
    with pytest.raises(ValueError, match="already registered"):
        proxy.rpc("orders.create")(create)
    with pytest.raises(ValueError, match="already registered"):
        proxy.rpc("orders.*")(create)


def test_subscribe_dispatch_allow_with_data_refuse_and_no_handler() -> None:
    proxy = Proxy(SECRET)

    @proxy.subscribe("team:*")
    def team(request: SubscribeRequest) -> SubscribeResult | None:
        name = request.channel.removeprefix("team:")
        if name not in request.meta["teams"]:
            raise Refuse(f"not a member of team {name}")
        return SubscribeResult({"team": name}) if name == "red" else None

    def body(channel: str, teams: list[str]) -> dict[str, Any]:
        return {"channel": channel, **CALLER, "meta": {"teams": teams}}

    assert call(proxy, "subscribe", body("team:red", ["red"])) == (
        200,
        {"result": {"data": {"team": "red"}}},
    )
    assert call(proxy, "subscribe", body("team:green", ["green"])) == (200, {"result": {}})
    assert call(proxy, "subscribe", body("team:blue", ["red"])) == (
        200,
        {"error": {"message": "not a member of team blue"}},
    )
    assert call(proxy, "subscribe", body("rooms:1", [])) == (
        200,
        {"error": {"message": "no handler for channel rooms:1"}},
    )

    @proxy.subscribe
    async def everything_else(request: SubscribeRequest) -> None:
        return None

    assert call(proxy, "subscribe", body("rooms:1", [])) == (200, {"result": {}})


def test_refresh_answers() -> None:
    proxy = Proxy(SECRET)
    answers: list[Any] = [
        1763776800,
        datetime(2025, 11, 22, 2, 0, tzinfo=timezone.utc),
        None,
        RefreshResult(1763776800.5, meta={"plan": "max"}),
    ]

    @proxy.refresh
    def refresh(request: RefreshRequest) -> Any:
        assert request.expires_at == 1763773200.0
        value = answers.pop(0)
        if value is None:
            raise Refuse("banned")
        return value

    body = {**CALLER, "expires_at": 1763773200.0}
    assert call(proxy, "refresh", body) == (200, {"result": {"expires_at": 1763776800}})
    assert call(proxy, "refresh", body) == (200, {"result": {"expires_at": 1763776800.0}})
    assert call(proxy, "refresh", body) == (200, {"error": {"message": "banned"}})
    assert call(proxy, "refresh", body) == (
        200,
        {"result": {"expires_at": 1763776800.5, "meta": {"plan": "max"}}},
    )

    lazy = Proxy(SECRET)
    lazy.refresh(lambda request: None)
    assert call(lazy, "refresh", body) == (200, {"result": {"expired": True}})


def test_notifications_call_every_handler_once_per_event_in_order() -> None:
    proxy = Proxy(SECRET)
    seen: list[tuple[str, Any]] = []

    @proxy.disconnect
    def log(event: DisconnectEvent) -> None:
        seen.append(("sync", (event.connection, event.code, event.request_id)))

    @proxy.disconnect
    async def record(event: DisconnectEvent) -> None:
        seen.append(("async", event.connection))

    @proxy.unsubscribe
    async def unsubscribed(event: UnsubscribeEvent) -> None:
        seen.append(("unsubscribe", event.channel))

    events = [
        {**CALLER, "connection": f"gw-1/{i}", "code": 1000 + i, "reason": "", "duration": 1.5,
         "channels": [], "at": 1.0}
        for i in range(2)
    ]  # fmt: skip
    assert call(proxy, "disconnect", {"events": events}) == (200, {})
    assert seen == [
        ("sync", ("gw-1/0", 1000, "abc-1")),
        ("async", "gw-1/0"),
        ("sync", ("gw-1/1", 1001, "abc-1")),
        ("async", "gw-1/1"),
    ]
    seen.clear()
    unsub = [{**CALLER, "channel": "team:red", "at": 2.0}]
    assert call_sync(proxy, "unsubscribe", {"events": unsub}) == (200, {})
    assert seen == [("unsubscribe", "team:red")]
    assert call(proxy, "disconnect", {"events": "no"})[0] == 400


def test_kinds_without_a_handler_answer_404() -> None:
    proxy = Proxy(SECRET)
    assert call(proxy, "connect", CONNECT)[0] == 404
    assert call(proxy, "disconnect", {"events": []})[0] == 404
    assert call(proxy, "presence", {})[0] == 404
    assert not proxy.handles(ProxyKind.RPC)


def test_handle_sync_runs_plain_handlers_inline_and_async_ones_to_completion() -> None:
    proxy = Proxy(SECRET)
    threads: list[threading.Thread] = []

    @proxy.rpc("plain")
    def plain(request: RpcRequest) -> str:
        threads.append(threading.current_thread())
        return "plain"

    @proxy.rpc("async")
    async def coroutine(request: RpcRequest) -> str:
        await asyncio.sleep(0)
        return "async"

    def body(action: str) -> dict[str, Any]:
        return {"action": action, **CALLER}

    assert call_sync(proxy, "rpc", body("plain")) == (200, {"result": "plain"})
    assert threads == [threading.current_thread()]
    assert call_sync(proxy, "rpc", body("async")) == (200, {"result": "async"})
    # A handler's own exception is not an answer: the framework answers 500.
    proxy.rpc("boom")(lambda request: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        call_sync(proxy, "rpc", body("boom"))


def test_starlette_routes_mount_every_kind_under_the_prefix() -> None:
    pytest.importorskip("starlette")
    import httpx
    from starlette.applications import Starlette

    from switchboard_rt.fastapi import starlette_routes

    proxy = Proxy(SECRET)

    @proxy.rpc("orders.create")
    async def create(request: RpcRequest) -> int:
        return 17

    app = Starlette(routes=starlette_routes(proxy, prefix="/rt/"))
    raw, headers = signed({"action": "orders.create", **CALLER})

    async def exchange() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            answer = await http.post("/rt/rpc", content=raw, headers=headers)
            assert (answer.status_code, answer.json()) == (200, {"result": 17})
            assert answer.headers["content-type"] == "application/json"
            assert (await http.post("/rt/connect", content=raw, headers=headers)).status_code == 404
            assert (await http.post("/rt/rpc", content=raw)).status_code == 401
            assert (await http.get("/rt/rpc")).status_code == 405

    asyncio.run(exchange())
