"""The HTTP clients against the real gateway: every target reaches a real
WebSocket client, every documented error maps to its exception."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from conftest import API_KEY, JWT_SECRET, Cluster, Keys, start_gateway
from support import Gateway, RedisServer, Ws, raw_connect

from switchboard_rt import (
    AsyncClient,
    BadRequestError,
    BrokerUnavailableError,
    Client,
    ConnectError,
    Data,
    Event,
    ForbiddenError,
    IdempotencyKeyError,
    NotFoundError,
    Notification,
    PublishResult,
    RequestTimeoutError,
    Retry,
    UnauthorizedError,
    _default,
    mint_token,
    set_default_async_publisher,
    set_default_publisher,
)
from switchboard_rt._core import IdempotencyMode

pytestmark = pytest.mark.anyio


def channel() -> str:
    return f"public:py-{uuid.uuid4().hex[:8]}"


def user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def client(gateway: Gateway) -> Iterator[Client]:
    with Client(gateway.url, api_key="") as c:
        yield c


async def test_room_event_reaches_subscribers_only(gateway: Gateway, client: Client) -> None:
    room = channel()
    member, outsider = await Ws.connect(gateway), await Ws.connect(gateway)
    await member.subscribe(room)
    result = client.publish(Event("article.published", {"title": "Hello"}), room=room)
    assert (result.local, result.forwarded) == (1, True)
    message = await member.receive()
    assert message["type"] == "EVENT"
    assert message["id"] == result.id
    assert message["payload"] == {
        "event": "article.published",
        "data": {"title": "Hello"},
        "channel": room,
    }
    await outsider.expect_nothing()
    await member.close()
    await outsider.close()


async def test_user_target_reaches_every_connection_of_the_user(
    gateway: Gateway, client: Client
) -> None:
    alice = user()
    token = mint_token(JWT_SECRET, alice)
    first, second = await Ws.connect(gateway, token=token), await Ws.connect(gateway, token=token)
    stranger = await Ws.connect(gateway, token=mint_token(JWT_SECRET, user()))
    assert first.user == alice
    result = client.publish(
        Notification("Deploy", "v2 is live", level="success", actions=[("Open", "open")]),
        user=alice,
    )
    assert result.local == 2
    for ws in (first, second):
        message = await ws.receive()
        assert message["type"] == "NOTIFICATION"
        assert message["payload"] == {
            "title": "Deploy",
            "message": "v2 is live",
            "level": "success",
            "actions": [{"label": "Open", "action": "open"}],
        }
    await stranger.expect_nothing()
    listed = client.user_connections(alice)
    assert sorted(c.id for c in listed.connections) == sorted(w.local_id for w in (first, second))
    assert {c.user for c in listed.connections} == {alice}
    for ws in (first, second, stranger):
        await ws.close()


async def test_connection_target_by_id_and_by_address(gateway: Gateway, client: Client) -> None:
    target, bystander = await Ws.connect(gateway), await Ws.connect(gateway)
    by_id = client.publish(Data("orders/1", {"n": 1}), connection=target.local_id)
    assert (by_id.local, by_id.forwarded) == (1, False)
    message = await target.receive()
    assert message["type"] == "DATA"
    assert message["payload"] == {"resource": "orders/1", "data": {"n": 1}}
    address = client.connection(target.local_id).address
    assert address == target.id
    client.publish("raw text", connection=address)
    raw = await target.connection.recv()
    assert raw == "raw text"
    await bystander.expect_nothing()
    await target.close()
    await bystander.close()


async def test_all_with_exclude(gateway: Gateway, client: Client) -> None:
    kept, left_out = await Ws.connect(gateway), await Ws.connect(gateway)
    result = client.broadcast(Event("maintenance", None), exclude=left_out.id)
    assert result.local >= 1
    assert (await kept.receive())["payload"]["event"] == "maintenance"
    await left_out.expect_nothing()
    everyone = client.publish(Event("again"), all=True)
    assert everyone.local >= 2
    assert (await left_out.receive())["payload"]["event"] == "again"
    await kept.close()
    await left_out.close()


async def test_raw_text_to_the_broadcast_endpoint(gateway: Gateway, client: Client) -> None:
    ws = await raw_connect(gateway, "/ws/broadcast")
    deadline = time.monotonic() + 5
    while client.room("broadcast").local < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert client.publish("hello", room="broadcast").local >= 1
    assert await ws.recv() == "hello"
    await ws.close()


async def test_disconnect_with_code_and_reason(gateway: Gateway, client: Client) -> None:
    kicked = await Ws.connect(gateway)
    result = client.disconnect(connection=kicked.id, code=4403, reason="banned")
    assert result.local == 1
    assert await kicked.closed() == (4403, "banned")
    mallory = user()
    ws = await Ws.connect(gateway, token=mint_token(JWT_SECRET, mallory))
    assert client.disconnect(user=mallory, code=4000).local == 1
    assert (await ws.closed())[0] == 4000


async def test_listings(gateway: Gateway, client: Client) -> None:
    room = channel()
    a, b = await Ws.connect(gateway), await Ws.connect(gateway)
    await a.subscribe(room)
    await b.subscribe(room)
    info = client.room(room)
    assert (info.room, info.local, info.cluster) == (room, 2, 2)
    assert sorted(info.members) == sorted([a.local_id, b.local_id])
    listed = client.connections(room=room)
    assert listed.total == 2
    first = listed.connections[0]
    assert first.path == "/ws"
    assert first.rooms == [room]
    assert first.client_addr.startswith("127.0.0.1:")
    assert abs(first.connected_at.timestamp() - time.time()) < 60
    assert client.connections(limit=1).connections.__len__() == 1
    assert any(r.room == room and r.size == 2 for r in client.rooms(limit=10_000).rooms)
    count = client.connection_count()
    assert count.local >= 2
    assert count.cluster >= 2
    assert client.readiness().ready is True
    await a.close()
    await b.close()


async def test_async_client_every_target(gateway: Gateway) -> None:
    room, bob = channel(), user()
    member = await Ws.connect(gateway)
    bobs = await Ws.connect(gateway, token=mint_token(JWT_SECRET, bob))
    await member.subscribe(room)
    async with AsyncClient(gateway.url, api_key="") as client:
        assert (await client.publish(Event("e1"), room=room)).local == 1
        assert (await member.receive())["payload"]["event"] == "e1"
        assert (await client.publish(Event("e2"), user=bob)).local == 1
        assert (await bobs.receive())["payload"]["event"] == "e2"
        assert (await client.publish(Event("e3"), connection=member.local_id)).local == 1
        assert (await member.receive())["payload"]["event"] == "e3"
        await client.broadcast(Event("e4"), exclude=member.id)
        assert (await bobs.receive())["payload"]["event"] == "e4"
        await member.expect_nothing()
        assert (await client.room(room)).local == 1
        assert (await client.connection(bobs.id)).user == bob
        assert (await client.connection_count()).local >= 2
        assert (await client.disconnect(connection=member.id, code=4001)).local == 1
        assert (await member.closed())[0] == 4001
        with pytest.raises(BadRequestError):
            await client.publish("x", room="no spaces")
    await bobs.close()


async def test_send_uses_the_default_client_from_the_environment(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWITCHBOARD_URL", gateway.url)
    monkeypatch.delenv("SWITCHBOARD_API_KEY", raising=False)
    monkeypatch.setattr(_default, "_own_sync", None)
    monkeypatch.setattr(_default, "_sync", None)
    room = channel()
    ws = await Ws.connect(gateway)
    await ws.subscribe(room)
    result = Notification(title="Build", message="green", level="success").send(room=room)
    assert isinstance(result, PublishResult)
    assert result.local == 1
    assert (await ws.receive())["payload"]["title"] == "Build"
    result = await Event("async.sent").send_async(room=room)
    assert (await ws.receive())["payload"]["event"] == "async.sent"
    with Client(gateway.url) as explicit:
        set_default_publisher(explicit)
        try:
            Event("explicit").send(connection=ws.id)
        finally:
            set_default_publisher(None)
    assert (await ws.receive())["payload"]["event"] == "explicit"
    async with AsyncClient(gateway.url) as explicit_async:
        set_default_async_publisher(explicit_async)
        try:
            await Event("explicit.async").send_async(connection=ws.id)
        finally:
            set_default_async_publisher(None)
    assert (await ws.receive())["payload"]["event"] == "explicit.async"
    await ws.close()


# ------------------------------------------------------------------ errors


def test_400_names_the_field(client: Client) -> None:
    with pytest.raises(BadRequestError) as caught:
        client.publish("x", room="not a room!")
    assert caught.value.status == 400
    assert caught.value.code == "bad_request"
    assert "target.room" in caught.value.message
    with pytest.raises(BadRequestError, match="code"):
        client.disconnect(all=True, code=1005)
    with pytest.raises(BadRequestError, match="limit"):
        client.connections(limit=0)


def test_404_and_403(client: Client) -> None:
    with pytest.raises(NotFoundError) as caught:
        client.connection(987654321)
    assert caught.value.code == "not_found"
    with pytest.raises(NotFoundError):
        client.connection("some-other-instance/1")
    with pytest.raises(ForbiddenError) as forbidden:
        client.shutdown()
    assert forbidden.value.code == "forbidden"


async def test_401_without_or_with_a_wrong_key(keyed_gateway: Gateway) -> None:
    for key in ("", "wrong-key-0123456789abc"):
        with Client(keyed_gateway.url, api_key=key) as anonymous:
            with pytest.raises(UnauthorizedError) as caught:
                anonymous.publish("x", all=True)
            assert (caught.value.status, caught.value.code) == (401, "unauthorized")
            with pytest.raises(UnauthorizedError):
                anonymous.connections()
    ws = await Ws.connect(keyed_gateway)
    with Client(keyed_gateway.url, api_key=API_KEY) as keyed:
        assert keyed.publish(Event("with.key"), connection=ws.id).local == 1
    assert (await ws.receive())["payload"]["event"] == "with.key"
    await ws.close()


def test_keys_are_sent_now_that_the_gateway_advertises_them(client: Client) -> None:
    assert client.supports_idempotency() is True
    first = client.publish("x", room=channel())
    second = client.publish("x", room=channel())
    assert first.idempotency_key is not None
    assert uuid.UUID(first.idempotency_key).version == 4
    assert second.idempotency_key not in (None, first.idempotency_key)


def test_a_bad_key_is_refused_not_dropped(gateway: Gateway) -> None:
    # A key the gateway refuses is the caller's: raised, never retried without it.
    modes: list[IdempotencyMode] = ["auto", "on"]
    for mode in modes:
        with Client(gateway.url, api_key="", idempotency=mode) as c:
            for bad in ("has space", "x" * 129, "é"):
                with pytest.raises(IdempotencyKeyError) as caught:
                    c.publish("x", room=channel(), idempotency_key=bad)
                assert caught.value.field == "idempotency_key"
                assert caught.value.attempts == 1


def test_connect_errors_and_timeouts() -> None:
    closed_port = _closed_port()
    with Client(f"http://127.0.0.1:{closed_port}", retry=Retry(attempts=2, backoff=0.01)) as c:
        with pytest.raises(ConnectError) as caught:
            c.publish("x", all=True)
        assert caught.value.maybe_delivered is False
        assert caught.value.attempts == 2
    with (
        _silent_server() as port,
        Client(f"http://127.0.0.1:{port}", timeout=0.3, retry=Retry(attempts=2, backoff=0.01)) as c,
    ):
        started = time.monotonic()
        with pytest.raises(RequestTimeoutError) as timed_out:
            c.publish("x", all=True)
        assert timed_out.value.maybe_delivered is True
        assert timed_out.value.attempts == 2
        assert time.monotonic() - started < 3


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


class _silent_server:  # noqa: N801 - used as a context manager
    """Accepts connections and never answers."""

    def __enter__(self) -> int:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.held: list[socket.socket] = []
        self.stop = threading.Event()
        self.sock.settimeout(0.1)

        def accept() -> None:
            while not self.stop.is_set():
                try:
                    conn, _ = self.sock.accept()
                except OSError:
                    continue
                self.held.append(conn)

        self.thread = threading.Thread(target=accept, daemon=True)
        self.thread.start()
        port: int = self.sock.getsockname()[1]
        return port

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        for conn in self.held:
            conn.close()
        self.sock.close()


# ------------------------------------------------------------------ brokers


async def test_cross_instance_publish(cluster: Cluster) -> None:
    room = channel()
    on_b = await Ws.connect(cluster.b)
    await on_b.subscribe(room)
    cluster.redis.wait_subscribed(f"sb:v1:room:{room}")
    with Client(cluster.a.url, api_key="") as via_a:
        result = via_a.publish(Event("across"), room=room)
        assert (result.local, result.forwarded) == (0, True)
        assert (await on_b.receive())["payload"]["event"] == "across"
        with Client(cluster.b.url, api_key="") as via_b:
            address = via_b.connection(on_b.local_id).address
        assert address == on_b.id == f"gw-b/{on_b.local_id}"
        result = via_a.publish(Event("to.address"), connection=address)
        assert (result.local, result.forwarded) == (0, True)
        assert (await on_b.receive())["payload"]["event"] == "to.address"
        deadline = time.monotonic() + 5
        while via_a.room(room).cluster < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert via_a.room(room).cluster == 1
    await on_b.close()


async def test_503_when_redis_is_down_then_retries_succeed(
    switchboard_bin: object, redis_bin: str, keys: Keys, tmp_path_factory: pytest.TempPathFactory
) -> None:
    redis = RedisServer()
    gw = start_gateway(
        tmp_path_factory.mktemp("fault"),
        keys,
        ["--broker", "redis", "--instance-id", "gw-fault"],
        env={"SWITCHBOARD_BROKER_URL": redis.url},
    )

    def outage() -> None:
        redis.kill()
        with Client(gw.url, api_key="") as probe:
            deadline = time.monotonic() + 10
            while probe.readiness().ready and time.monotonic() < deadline:
                time.sleep(0.05)

    try:
        room, alice = channel(), user()  # public:* keeps a history; users do not
        ws = await Ws.connect(gw)
        await ws.subscribe(room)
        alices = await Ws.connect(gw, token=mint_token(JWT_SECRET, alice))
        keyed = Client(gw.url, api_key="", retry=Retry.none())
        plain = Client(gw.url, api_key="", retry=Retry.none(), idempotency="off")
        before = keyed.publish(Event("before"), room=room)
        assert (before.forwarded, before.offset) == (True, 1)
        assert (await ws.receive())["payload"]["event"] == "before"
        outage()
        readiness = keyed.readiness()
        assert readiness.ready is False
        assert (readiness.broker_type, readiness.broker_connected) == ("redis", False)
        # A room with history: not in the stream, so delivered to no one.
        with pytest.raises(BrokerUnavailableError) as caught:
            keyed.publish(Event("during"), room=room)
        error = caught.value
        assert (error.status, error.code) == (503, "broker_unavailable")
        assert error.local == 0
        assert error.retry_after == 1.0
        assert error.attempts == 1
        # A user, with an idempotency key: the key is checked in Redis first,
        # so nothing is delivered either.
        with pytest.raises(BrokerUnavailableError) as to_user:
            keyed.publish(Event("during.keyed"), user=alice)
        assert to_user.value.local == 0
        # Without a key, the local connections got it anyway: why a retry may deliver twice.
        with pytest.raises(BrokerUnavailableError) as unkeyed:
            plain.publish(Event("during.plain"), user=alice)
        assert unkeyed.value.local == 1
        assert (await alices.receive())["payload"]["event"] == "during.plain"
        with pytest.raises(BrokerUnavailableError):
            keyed.connection_count()
        keyed.close()
        plain.close()

        retry = Retry(attempts=40, backoff=0.1, max_backoff=0.25)
        # Retrying across a Redis restart, to a room with history: the same
        # key on every attempt, delivered once. Redis came back empty, so the
        # stream has a new epoch, announced to the subscriber as a gap first.
        restart = threading.Timer(0.5, redis.start)
        restart.start()
        with Client(gw.url, api_key="", retry=retry) as client:
            to_room = client.publish(Event("after"), room=room)
        restart.join()
        assert to_room.attempts > 1
        assert (to_room.offset, to_room.duplicate) == (1, False)
        assert to_room.epoch != before.epoch
        gap = (await ws.receive())["payload"]
        assert (gap["event"], gap["data"]["epoch"], gap["data"]["to"]) == (
            "switchboard.gap",
            before.epoch,
            None,
        )
        after = await ws.receive()
        assert (after["payload"]["event"], after["offset"]) == ("after", 1)
        await ws.expect_nothing()

        # To a user, across another restart: once with a key, once per
        # attempt without one.
        outage()
        results: dict[str, PublishResult] = {}

        def publish(name: str, mode: IdempotencyMode) -> None:
            with Client(gw.url, api_key="", retry=retry, idempotency=mode) as c:
                results[name] = c.publish(Event(name), user=alice)

        threads = [
            threading.Thread(target=publish, args=("keyed", "auto")),
            threading.Thread(target=publish, args=("plain", "off")),
        ]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        redis.start()
        for thread in threads:
            thread.join()
        assert results["keyed"].attempts > 1
        assert results["plain"].attempts > 1
        expected = 1 + results["plain"].attempts
        events = sorted([(await alices.receive())["payload"]["event"] for _ in range(expected)])
        assert events == sorted(["keyed"] + ["plain"] * results["plain"].attempts)
        await alices.expect_nothing()
        await ws.close()
        await alices.close()
    finally:
        gw.stop()
        redis.kill()
