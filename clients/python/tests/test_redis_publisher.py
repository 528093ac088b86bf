"""Publishing through Redis (wire format v1) to two real gateways sharing a
real redis-server: every target reaches a real WebSocket client."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator

import pytest
from conftest import JWT_SECRET, Cluster
from support import Ws, raw_connect

from switchboard_rt import Client, Data, Event, Notification, RedisPublishError, mint_token
from switchboard_rt.redis import AsyncRedisPublisher, RedisPublisher

pytestmark = pytest.mark.anyio


def channel() -> str:
    return f"public:redis-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def publisher(cluster: Cluster) -> Iterator[RedisPublisher]:
    with RedisPublisher.from_url(cluster.redis.url) as p:
        yield p


async def test_room_on_both_instances(cluster: Cluster, publisher: RedisPublisher) -> None:
    room = channel()
    on_a, on_b, outsider = (
        await Ws.connect(cluster.a),
        await Ws.connect(cluster.b),
        await Ws.connect(cluster.b),
    )
    await on_a.subscribe(room)
    await on_b.subscribe(room)
    cluster.redis.wait_subscribed(f"sb:v1:room:{room}", 2)
    result = publisher.publish(Event("built", {"ok": True}), room=room)
    assert result.channel == f"sb:v1:room:{room}"
    assert result.listening == 2
    for ws in (on_a, on_b):
        message = await ws.receive()
        assert message["type"] == "EVENT"
        assert message["id"] == result.id
        assert message["payload"] == {"event": "built", "data": {"ok": True}, "channel": room}
        assert abs(message["timestamp"] - time.time()) < 60
    await outsider.expect_nothing()
    # Nobody listens to an empty room: Redis says so.
    assert publisher.publish("lost", room=channel()).listening == 0
    for ws in (on_a, on_b, outsider):
        await ws.close()


async def test_user_connection_all_and_exclude(cluster: Cluster, publisher: RedisPublisher) -> None:
    carol = f"carol-{uuid.uuid4().hex[:6]}"
    carols = await Ws.connect(cluster.b, token=mint_token(JWT_SECRET, carol))
    other = await Ws.connect(cluster.a)
    cluster.redis.wait_subscribed(f"sb:v1:user:{carol}")
    assert publisher.publish(Notification("Hi", "there"), user=carol).listening == 1
    message = await carols.receive()
    assert message["type"] == "NOTIFICATION"
    assert message["payload"]["title"] == "Hi"
    assert "channel" not in message["payload"]

    result = publisher.publish(Data("orders", [1]), connection=other.id)
    assert result.channel == "sb:v1:instance:gw-a"
    assert (await other.receive())["payload"] == {"resource": "orders", "data": [1]}
    await carols.expect_nothing()

    assert publisher.publish(Event("everyone"), all=True, exclude=other.id).listening == 2
    assert (await carols.receive())["payload"]["event"] == "everyone"
    await other.expect_nothing()
    await carols.close()
    await other.close()


async def test_text_and_binary_to_the_broadcast_endpoint(
    cluster: Cluster, publisher: RedisPublisher
) -> None:
    ws = await raw_connect(cluster.b, "/ws/broadcast")
    cluster.redis.wait_subscribed("sb:v1:room:broadcast")
    publisher.publish("plain text", room="broadcast")
    assert await ws.recv() == "plain text"
    publisher.publish(b"\x00\x01\xfe", room="broadcast")
    assert await ws.recv() == b"\x00\x01\xfe"
    await ws.close()
    assert base64  # the wire format carries binary as base64 (test_wire.py)


async def test_disconnect_through_redis(cluster: Cluster, publisher: RedisPublisher) -> None:
    ws = await Ws.connect(cluster.a)
    publisher.disconnect(connection=ws.id, code=4403, reason="banned")
    assert await ws.closed() == (4403, "banned")
    dave = f"dave-{uuid.uuid4().hex[:6]}"
    daves = await Ws.connect(cluster.b, token=mint_token(JWT_SECRET, dave))
    cluster.redis.wait_subscribed(f"sb:v1:user:{dave}")
    publisher.disconnect(user=dave)
    assert (await daves.closed())[0] == 1000


async def test_async_publisher_and_send_via(cluster: Cluster) -> None:
    room = channel()
    ws = await Ws.connect(cluster.a)
    await ws.subscribe(room)
    cluster.redis.wait_subscribed(f"sb:v1:room:{room}")
    async with AsyncRedisPublisher.from_url(cluster.redis.url) as publisher:
        result = await publisher.publish(Event("async"), room=room)
        assert result.listening == 1
        assert (await ws.receive())["payload"]["event"] == "async"
        await Event("via").send_async(room=room, via=publisher)
        assert (await ws.receive())["payload"]["event"] == "via"
    with RedisPublisher.from_url(cluster.redis.url) as sync_publisher:
        Notification("sync", "via").send(room=room, via=sync_publisher)
    assert (await ws.receive())["payload"]["title"] == "sync"
    # The HTTP API sees the same room.
    with Client(cluster.a.url, api_key="") as client:
        assert client.room(room).local == 1
    await ws.close()


def test_redis_down_is_an_error(cluster: Cluster) -> None:
    from redis.backoff import NoBackoff
    from redis.retry import Retry as RedisRetry

    with (
        RedisPublisher.from_url(
            "redis://127.0.0.1:1", socket_connect_timeout=0.5, retry=RedisRetry(NoBackoff(), 0)
        ) as nowhere,
        pytest.raises(RedisPublishError) as caught,
    ):
        nowhere.publish("x", all=True)
    assert caught.value.maybe_delivered is False
    with pytest.raises(ValueError, match="address"):
        RedisPublisher.from_url(cluster.redis.url).publish("x", connection=42)
