"""The HTTP clients against a scripted transport (httpx.MockTransport):
requests as sent, error mapping, retries, idempotency keys. The same
behaviours against the real gateway are in test_gateway_http.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from switchboard_rt import (
    ApiError,
    AsyncClient,
    BadRequestError,
    BrokerUnavailableError,
    Client,
    ConnectError,
    Event,
    ForbiddenError,
    HistoryQueryError,
    IdempotencyKeyError,
    NoHistoryError,
    NotFoundError,
    Notification,
    PayloadTooLargeError,
    RequestTimeoutError,
    Retry,
    ServerError,
    ServiceUnavailableError,
    TransportError,
    UnauthorizedError,
    UnsupportedFeatureError,
    UnsupportedMediaTypeError,
)

FAST = Retry(attempts=3, backoff=0.001, max_backoff=0.002)
OPENAPI_WITH_KEYS: dict[str, Any] = {
    "components": {
        "schemas": {"PublishRequest": {"properties": {"target": {}, "idempotency_key": {}}}}
    }
}
OPENAPI_WITHOUT: dict[str, Any] = {
    "components": {"schemas": {"PublishRequest": {"properties": {"target": {}}}}}
}
OK = {"local": 1, "forwarded": True}

Handler = Callable[[httpx.Request], httpx.Response]


def error(status: int, code: str, **extra: Any) -> httpx.Response:
    headers = {"Retry-After": "1"} if status == 503 else {}
    body = {"error": {"code": code, "message": f"{code} happened"}, **extra}
    return httpx.Response(status, json=body, headers=headers)


class Script:
    """Answers requests in order, recording them; GET openapi.json answers
    ``openapi`` (without keys by default)."""

    def __init__(self, *answers: httpx.Response | Exception, openapi: Any = None) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.openapi = openapi if openapi is not None else OPENAPI_WITHOUT

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/openapi.json":
            return httpx.Response(200, json=self.openapi)
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]


def client(script: Handler, **kwargs: Any) -> Client:
    kwargs.setdefault("retry", FAST)
    return Client(
        "http://gw.test:8080",
        http_client=httpx.Client(transport=httpx.MockTransport(script)),
        **kwargs,
    )


def test_publish_request_as_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_API_KEY", "k" * 20)
    script = Script(httpx.Response(200, json={**OK, "id": "abc"}))
    result = client(script).publish(Event("e", {"a": 1}), room="public:x", exclude="gw/3")
    assert result.local == 1
    assert result.forwarded is True
    assert result.id == "abc"
    assert result.attempts == 1
    assert result.idempotency_key is None
    (request,) = script.requests
    assert request.method == "POST"
    assert request.url == "http://gw.test:8080/api/v1/publish"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["authorization"] == "Bearer " + "k" * 20
    assert "origin" not in request.headers
    assert request.headers["user-agent"].startswith("switchboard-realtime/")
    assert json.loads(request.content) == {
        "target": {"room": "public:x"},
        "message": {"type": "EVENT", "event": "e", "data": {"a": 1}},
        "except": "gw/3",
    }


def test_every_target_and_operation_as_sent() -> None:
    script = Script(httpx.Response(200, json=OK))
    c = client(script)
    c.publish("hi", user="auth0|1")
    c.publish("hi", connection=42)
    c.broadcast(Notification("t", "m"), exclude=7)
    c.disconnect(user="mallory", code=4403, reason="banned")
    assert script.bodies() == [
        {"target": {"user": "auth0|1"}, "text": "hi"},
        {"target": {"connection": "42"}, "text": "hi"},
        {
            "target": {"all": True},
            "message": {
                "type": "NOTIFICATION",
                "title": "t",
                "message": "m",
                "level": "info",
                "actions": [],
            },
            "except": "7",
        },
        {"target": {"user": "mallory"}, "code": 4403, "reason": "banned"},
    ]
    with pytest.raises(TypeError, match="Redis"):
        c.publish(b"bytes", room="r")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="exactly one"):
        c.publish("x", room="r", all=True)


def test_reads_encode_paths_and_queries() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        path = request.url.path
        if path.endswith("/count"):
            return httpx.Response(200, json={"local": 1, "cluster": 3})
        if path.startswith("/api/v1/rooms/"):
            return httpx.Response(
                200, json={"room": "a/b", "local": 1, "cluster": 2, "members": [4]}
            )
        if path == "/api/v1/rooms":
            return httpx.Response(
                200, json={"instance": "i", "total": 1, "rooms": [{"room": "r", "size": 2}]}
            )
        conn = {
            "id": 4,
            "address": "i/4",
            "user": None,
            "client_addr": "127.0.0.1:5",
            "path": "/ws",
            "connected_at": 1.5,
            "rooms": ["r"],
        }
        if path.startswith("/api/v1/connections/"):
            return httpx.Response(200, json=conn)
        return httpx.Response(200, json={"instance": "i", "total": 1, "connections": [conn]})

    c = client(answer)
    assert c.connection_count().cluster == 3
    assert c.room("a/b").members == [4]
    assert c.rooms(limit=5).rooms[0].size == 2
    one = c.connection("gw-1/42")
    assert one.connected_at.timestamp() == 1.5
    assert one.rooms == ["r"]
    assert c.connections(room="r", limit=10).connections[0].address == "i/4"
    assert c.user_connections("a b/c").total == 1
    assert seen == [
        "http://gw.test:8080/api/v1/connections/count",
        "http://gw.test:8080/api/v1/rooms/a%2Fb",
        "http://gw.test:8080/api/v1/rooms?limit=5",
        "http://gw.test:8080/api/v1/connections/gw-1%2F42",
        "http://gw.test:8080/api/v1/connections?room=r&limit=10",
        "http://gw.test:8080/api/v1/users/a%20b%2Fc/connections",
    ]


@pytest.mark.parametrize(
    ("answer", "exception", "code"),
    [
        (error(400, "bad_request"), BadRequestError, "bad_request"),
        (error(401, "unauthorized"), UnauthorizedError, "unauthorized"),
        (error(403, "forbidden"), ForbiddenError, "forbidden"),
        (error(404, "not_found"), NotFoundError, "not_found"),
        (error(413, "payload_too_large"), PayloadTooLargeError, "payload_too_large"),
        (httpx.Response(415, text="Unsupported Media Type"), UnsupportedMediaTypeError, None),
        (error(503, "starting"), ServiceUnavailableError, "starting"),
        (error(500, "internal"), ServerError, "internal"),
        (httpx.Response(405, text="Method Not Allowed"), ApiError, None),
    ],
)
def test_error_mapping(answer: httpx.Response, exception: type[ApiError], code: str | None) -> None:
    with pytest.raises(exception) as caught:
        client(Script(answer), retry=Retry.none()).publish("x", room="r")
    assert type(caught.value) is exception
    assert caught.value.status == answer.status_code
    assert caught.value.code == code
    if code:
        assert caught.value.message == f"{code} happened"


def test_broker_unavailable_carries_local_and_retry_after() -> None:
    script = Script(error(503, "broker_unavailable", local=3, forwarded=False))
    with pytest.raises(BrokerUnavailableError) as caught:
        client(script, retry=Retry.none()).publish("x", room="r")
    assert caught.value.local == 3
    assert caught.value.forwarded is False
    assert caught.value.retry_after == 1.0
    assert caught.value.attempts == 1
    assert isinstance(caught.value, ServiceUnavailableError)


def test_retries_503_then_succeeds() -> None:
    script = Script(
        error(503, "broker_unavailable", local=1),
        error(502, "bad_gateway"),
        httpx.Response(200, json=OK),
    )
    retry = Retry(attempts=3, backoff=0.001, max_backoff=0.001)  # caps Retry-After: 1
    result = client(script, retry=retry).publish("x", room="r")
    assert result.attempts == 3
    assert len(script.requests) == 3


def test_gives_up_after_attempts() -> None:
    script = Script(error(503, "broker_unavailable", local=0))
    with pytest.raises(BrokerUnavailableError) as caught:
        client(script).publish("x", room="r")
    assert caught.value.attempts == 3
    assert len(script.requests) == 3


def test_4xx_are_not_retried() -> None:
    script = Script(error(400, "bad_request"))
    with pytest.raises(BadRequestError):
        client(script).publish("x", room="r")
    assert len(script.requests) == 1


def test_transport_errors_say_whether_it_may_have_been_delivered() -> None:
    refused = Script(httpx.ConnectError("refused"))
    with pytest.raises(ConnectError) as caught:
        client(refused).publish("x", room="r")
    assert caught.value.maybe_delivered is False
    assert caught.value.attempts == 3
    slow = Script(httpx.ReadTimeout("slow"))
    with pytest.raises(RequestTimeoutError) as timed_out:
        client(slow).publish("x", room="r")
    assert timed_out.value.maybe_delivered is True
    assert timed_out.value.attempts == 3
    dropped = Script(httpx.RemoteProtocolError("dropped"), httpx.Response(200, json=OK))
    assert client(dropped).publish("x", room="r").attempts == 2
    careful = Script(httpx.ReadTimeout("slow"))
    with pytest.raises(TransportError):
        client(careful, retry=Retry(on_network_error=False)).publish("x", room="r")
    assert len(careful.requests) == 1
    assert (
        client(Script(httpx.ConnectError("x"), httpx.Response(200, json=OK)))
        .publish("x", room="r")
        .attempts
        == 2
    )


def test_idempotency_key_only_where_advertised() -> None:
    plain = Script(httpx.Response(200, json=OK))
    c = client(plain)
    c.publish("x", room="r")
    assert "idempotency_key" not in plain.bodies()[0]
    with pytest.raises(UnsupportedFeatureError):
        c.publish("x", room="r", idempotency_key="mine")

    advertised = Script(
        error(503, "broker_unavailable", local=1),
        httpx.ReadTimeout("slow"),
        httpx.Response(200, json={**OK, "offset": 7, "epoch": "e1"}),
        openapi=OPENAPI_WITH_KEYS,
    )
    retry = Retry(attempts=3, backoff=0.001, max_backoff=0.001)
    result = client(advertised, retry=retry).publish("x", room="r")
    keys = [body["idempotency_key"] for body in advertised.bodies()]
    assert len(keys) == 3
    assert len(set(keys)) == 1
    assert result.idempotency_key == keys[0]
    assert (result.offset, result.epoch, result.attempts) == (7, "e1", 3)

    # A new key per publish, and an explicit one is used as is.
    again = Script(httpx.Response(200, json=OK), openapi=OPENAPI_WITH_KEYS)
    c = client(again)
    c.publish("x", room="r")
    c.publish("x", room="r")
    c.publish("x", room="r", idempotency_key="mine")
    keys = [body["idempotency_key"] for body in again.bodies()]
    assert keys[0] != keys[1]
    assert keys[2] == "mine"

    forced = Script(httpx.Response(200, json=OK))
    client(forced, idempotency="on").publish("x", room="r")
    assert "idempotency_key" in forced.bodies()[0]
    off = Script(httpx.Response(200, json=OK), openapi=OPENAPI_WITH_KEYS)
    client(off, idempotency="off").publish("x", room="r")
    assert "idempotency_key" not in off.bodies()[0]


def test_configuration_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_URL", "ws://10.1.2.3:9000/")
    monkeypatch.setenv("SWITCHBOARD_API_KEY", "from-env-key-0123456789")
    c = Client()
    assert c.url == "http://10.1.2.3:9000"
    assert "from-env" not in repr(c)
    assert Client(api_key="").url == "http://10.1.2.3:9000"
    c.close()
    monkeypatch.delenv("SWITCHBOARD_URL")
    assert Client().url == "http://127.0.0.1:8080"
    assert Client("wss://gw.example.com/sb").url == "https://gw.example.com/sb"
    with pytest.raises(ValueError, match="url"):
        Client("gw.example.com")


@pytest.mark.anyio
async def test_async_client_same_behaviour() -> None:
    script = Script(
        error(503, "broker_unavailable", local=2),
        httpx.Response(200, json=OK),
        openapi=OPENAPI_WITH_KEYS,
    )
    retry = Retry(attempts=3, backoff=0.001, max_backoff=0.001)
    transport = httpx.MockTransport(script)
    async with AsyncClient(
        "http://gw.test", retry=retry, http_client=httpx.AsyncClient(transport=transport)
    ) as c:
        result = await c.publish(Event("e"), room="r")
        assert result.attempts == 2
        keys = {body["idempotency_key"] for body in script.bodies()}
        assert len(keys) == 1
        failing = Script(error(401, "unauthorized"))
        c2 = AsyncClient(
            "http://gw.test", http_client=httpx.AsyncClient(transport=httpx.MockTransport(failing))
        )
        with pytest.raises(UnauthorizedError):
            await c2.connections()


def test_own_pool_with_a_transport_sends_the_same_headers() -> None:
    listing = {"instance": "i", "total": 0, "connections": []}
    script = Script(httpx.Response(200, json=OK), httpx.Response(200, json=listing))
    with Client("http://gw.test", api_key="k" * 20, transport=httpx.MockTransport(script)) as c:
        c.publish("x", room="r")
        c.connections()
    post, get = script.requests
    for request in (post, get):
        assert request.headers["authorization"] == "Bearer " + "k" * 20
        assert request.headers["accept"] == "application/json"
        assert "origin" not in request.headers
    assert post.headers["content-type"] == "application/json"


def test_idempotency_support_is_learnt_again(monkeypatch: pytest.MonkeyPatch) -> None:
    from switchboard_rt import client as client_module

    state = {"openapi": 0, "down": True, "advertise": True}

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/openapi.json":
            state["openapi"] += 1
            if state["down"]:
                raise httpx.ConnectError("down")
            return httpx.Response(
                200, json=OPENAPI_WITH_KEYS if state["advertise"] else OPENAPI_WITHOUT
            )
        body = json.loads(request.content)
        if "idempotency_key" in body and not state["advertise"]:
            refusal = {
                "error": {"code": "bad_request", "message": "idempotency_key: unknown field"}
            }
            return httpx.Response(400, json=refusal)
        return httpx.Response(200, json=OK)

    c = Client("http://gw.test", transport=httpx.MockTransport(answer), retry=FAST)
    # No answer about support: no key, and ask again next time.
    assert c.publish("x", room="r").idempotency_key is None
    state["down"] = False
    assert c.publish("x", room="r").idempotency_key is not None
    asked = state["openapi"]
    c.publish("x", room="r")
    assert state["openapi"] == asked  # cached
    # An instance that refuses keys (a rolling upgrade): published again without one.
    state["advertise"] = False
    assert c.publish("x", room="r").idempotency_key is None
    assert c.publish("x", room="r").idempotency_key is None
    # Asked again after a while.
    monkeypatch.setattr(client_module, "_RECHECK_AFTER", 0.0)
    state["advertise"] = True
    assert c.publish("x", room="r").idempotency_key is not None
    # An explicit key that the gateway refuses is the caller's error.
    state["advertise"] = False
    monkeypatch.setattr(client_module, "_RECHECK_AFTER", 1e9)
    with pytest.raises(BadRequestError):
        c.publish("x", room="r", idempotency_key="mine")


def test_new_errors_are_typed() -> None:
    def answer(status: int, message: str) -> httpx.MockTransport:
        return httpx.MockTransport(
            lambda request: httpx.Response(
                status, json={"error": {"code": "x", "message": message}}
            )
        )

    cases: list[tuple[int, str, type[Exception]]] = [
        (400, "limit: must be 1 to 1000", HistoryQueryError),
        (400, "Failed to deserialize query string: since: invalid digit", HistoryQueryError),
        (400, 'channel: "a b" is not a valid room', BadRequestError),
        (404, "team:x keeps no history (no [[history.channels]] rule matches it)", NoHistoryError),
        (404, "no such route", NotFoundError),
    ]
    for status, message, expected in cases:
        with Client("http://gw", transport=answer(status, message), retry=Retry.none()) as c:
            with pytest.raises(expected) as caught:
                c.history("public:x")
            assert type(caught.value) is expected
    with (
        Client(
            "http://gw",
            transport=answer(400, "idempotency_key: must be printable ASCII without spaces"),
            idempotency="on",
        ) as c,
        pytest.raises(IdempotencyKeyError) as bad_key,
    ):
        c.publish("x", room="r", idempotency_key="a b")
    assert bad_key.value.field == "idempotency_key"
