"""Streams through Redis: the publishers run the gateway's append script for
rooms with history, against two real gateways (``--broker redis``) sharing a
real redis-server. A /ws subscriber gets Python's publications with their
offsets, interleaved with the gateway's own; a client that was disconnected
recovers them; a replayed key is a duplicate; a restarted Redis starts a new
epoch unless it is durable."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from conftest import JWT_SECRET, Cluster
from support import REPO, RedisServer, Ws

from switchboard_rt import (
    Client,
    Event,
    HistoryConfig,
    HistoryRule,
    Notification,
    UnsupportedFeatureError,
    mint_token,
)
from switchboard_rt.redis import AsyncRedisPublisher, RedisPublisher, parse_run_id

pytestmark = pytest.mark.anyio

EXAMPLE = REPO / "examples" / "python" / "publish_to_room.py"


def channel() -> str:
    return f"public:rs-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def publisher(cluster: Cluster) -> Iterator[RedisPublisher]:
    with RedisPublisher.from_url(cluster.redis.url) as p:
        yield p


async def test_a_ws_subscriber_gets_python_publications_with_offsets(
    cluster: Cluster, publisher: RedisPublisher
) -> None:
    room = channel()
    ws = await Ws.connect(cluster.b)
    joined = await ws.subscribe_with(room)
    cluster.redis.wait_subscribed(f"sb:v1:room:{room}")
    first = publisher.publish(Event("from.python", {"n": 1}), room=room)
    assert (first.offset, first.epoch, first.duplicate) == (1, joined["epoch"], False)
    assert first.listening == 1
    assert first.idempotency_key is not None
    message = await ws.receive()
    assert message["offset"] == 1
    assert message["id"] == first.id
    assert message["payload"] == {"event": "from.python", "data": {"n": 1}, "channel": room}

    # The gateway's own publishes and Python's share one stream and epoch
    # (the same keys, and the same Redis run_id).
    with Client(cluster.a.url, api_key="") as http:
        second = http.publish(Event("from.http"), room=room)
        third = publisher.publish(Notification("from", "python again"), room=room)
        assert (second.offset, second.epoch) == (2, first.epoch)
        assert (third.offset, third.epoch) == (3, first.epoch)
        assert [(await ws.receive())["offset"] for _ in range(2)] == [2, 3]
        page = http.history(room)
    assert [p.offset for p in page.publications] == [1, 2, 3]
    assert page.publications[0].to_message() == Event("from.python", {"n": 1})
    assert page.publications[2].to_message() == Notification("from", "python again")
    await ws.expect_nothing()
    await ws.close()


async def test_recovery_across_a_disconnect(cluster: Cluster, publisher: RedisPublisher) -> None:
    room = channel()
    ws = await Ws.connect(cluster.a)
    joined = await ws.subscribe_with(room)
    cluster.redis.wait_subscribed(f"sb:v1:room:{room}")
    publisher.publish(Event("seen"), room=room)
    position = (joined["epoch"], (await ws.receive())["offset"])
    assert position[1] == 1
    await ws.close()
    missed = [publisher.publish(Event(f"missed.{n}"), room=room) for n in range(3)]
    assert [m.offset for m in missed] == [2, 3, 4]

    # Back, on the other instance.
    back = await Ws.connect(cluster.b)
    recovered = await back.subscribe_with(room, recover=position)
    assert (recovered["recovered"], recovered["offset"]) == (True, 4)
    replayed = [await back.receive() for _ in missed]
    assert [(m["offset"], m["payload"]["event"]) for m in replayed] == [
        (2, "missed.0"),
        (3, "missed.1"),
        (4, "missed.2"),
    ]
    assert [m["id"] for m in replayed] == [m.id for m in missed]
    cluster.redis.wait_subscribed(f"sb:v1:room:{room}")
    live = publisher.publish(Event("live"), room=room)
    assert (await back.receive())["offset"] == live.offset == 5
    await back.expect_nothing()
    # `last` replays the latest ones.
    latest = await Ws.connect(cluster.a)
    await latest.subscribe_with(room, last=2)
    assert [(await latest.receive())["offset"] for _ in range(2)] == [4, 5]
    await back.close()
    await latest.close()


async def test_a_replayed_key_is_delivered_once(
    cluster: Cluster, publisher: RedisPublisher
) -> None:
    room = channel()
    ws = await Ws.connect(cluster.b)
    await ws.subscribe(room)
    cluster.redis.wait_subscribed(f"sb:v1:room:{room}")
    first = publisher.publish(Event("once"), room=room, idempotency_key="job-42")
    again = publisher.publish(Event("once"), room=room, idempotency_key="job-42")
    assert (first.duplicate, again.duplicate) == (False, True)
    assert (again.offset, again.epoch) == (first.offset, first.epoch)
    assert (again.listening, again.id) == (0, None)
    assert again.idempotency_key == "job-42"
    # The gateway sees the same key: an HTTP retry of it is a duplicate too.
    with Client(cluster.a.url, api_key="") as http:
        via_http = http.publish(Event("once"), room=room, idempotency_key="job-42")
    assert (via_http.duplicate, via_http.offset) == (True, first.offset)
    assert (await ws.receive())["payload"]["event"] == "once"
    await ws.expect_nothing()
    await ws.close()


async def test_async_publisher_appends_too(cluster: Cluster) -> None:
    room = channel()
    ws = await Ws.connect(cluster.a)
    await ws.subscribe(room)
    cluster.redis.wait_subscribed(f"sb:v1:room:{room}")
    async with AsyncRedisPublisher.from_url(cluster.redis.url) as publisher:
        first = await publisher.publish(Event("async"), room=room)
        again = await publisher.publish(
            Event("async"), room=room, idempotency_key=first.idempotency_key
        )
        raw = await publisher.publish(b"\x00\x01", room=room)
    assert (first.offset, again.offset, again.duplicate, raw.offset) == (1, 1, True, 2)
    message = await ws.receive()
    assert (message["offset"], message["payload"]["event"]) == (1, "async")
    # Binary is kept in the stream, and goes out as it is (without an offset).
    assert await ws.connection.recv() == b"\x00\x01"
    with Client(cluster.a.url, api_key="") as http:
        kept = http.history(room).publications
    assert [(p.offset, p.kind) for p in kept] == [(1, "message"), (2, "binary")]
    assert kept[1].binary == b"\x00\x01"
    await ws.close()


async def test_users_and_rooms_without_history_are_one_publish(
    cluster: Cluster, publisher: RedisPublisher
) -> None:
    carol = f"carol-{uuid.uuid4().hex[:6]}"
    ws = await Ws.connect(cluster.a, token=mint_token(JWT_SECRET, carol))
    cluster.redis.wait_subscribed(f"sb:v1:user:{carol}")
    result = publisher.publish(Event("hi"), user=carol)
    assert (result.listening, result.offset, result.idempotency_key) == (1, None, None)
    message = await ws.receive()
    assert "offset" not in message
    with pytest.raises(UnsupportedFeatureError):
        publisher.publish(Event("hi"), user=carol, idempotency_key="k")
    with pytest.raises(ValueError, match="idempotency_key"):
        publisher.publish(Event("hi"), room=channel(), idempotency_key="has space")
    # A publisher told that no room keeps history publishes bare (it must
    # match the gateway: this one's subscribers would get no offset).
    with RedisPublisher.from_url(cluster.redis.url, history=HistoryConfig.none()) as bare:
        assert bare.publish(Event("x"), room=channel()).offset is None
    await ws.close()


def test_the_rule_sets_size_and_times(redis_server: RedisServer) -> None:
    history = HistoryConfig(
        channels=[HistoryRule("orders:*", size=2, ttl=30)],
        meta_ttl=120,
        idempotency_window=60,
    )
    room = f"orders:{uuid.uuid4().hex[:8]}"
    with RedisPublisher.from_url(redis_server.url, history=history) as publisher:
        results = [publisher.publish(f"n{n}", room=room) for n in range(5)]
        assert [r.offset for r in results] == [1, 2, 3, 4, 5]
        assert publisher.publish("x", room="public:not-here").offset is None
    raw = redis.Redis.from_url(redis_server.url)
    try:
        stream, meta = f"sb:v1:stream:{{{room}}}", f"sb:v1:meta:{{{room}}}"
        entries: Any = raw.xrange(stream)
        assert [entry_id for entry_id, _ in entries] == [b"4-0", b"5-0"]
        data = entries[1][1][b"d"].decode()
        assert data.startswith(f'{{"offset":5,"epoch":"{results[0].epoch}","v":1,')
        assert 25_000 < raw.pttl(stream) <= 30_000
        assert 110_000 < raw.pttl(meta) <= 120_000
        assert raw.hget(meta, "r") == raw.info("server")["run_id"].encode()
        idem = f"sb:v1:idem:{{{room}}}:{results[4].idempotency_key}"
        assert raw.get(idem) == f"{results[4].epoch} 5".encode()
        assert 50_000 < raw.pttl(idem) <= 60_000
    finally:
        raw.close()


@pytest.mark.parametrize("durable", [False, True])
def test_a_restarted_redis_starts_a_new_epoch_unless_durable(
    redis_bin: str, tmp_path: Path, durable: bool
) -> None:
    # Redis restarts from a snapshot: the meta hash comes back with the old
    # run_id. A publisher whose pooled connection is now to the new server
    # must pass the new run_id, so that a non-durable cluster starts a new
    # epoch (offsets written after the snapshot may have been lost).
    server = RedisServer(directory=tmp_path)
    room = channel()
    try:
        with RedisPublisher.from_url(
            server.url, history=HistoryConfig(durable=durable)
        ) as publisher:
            before = publisher.publish("before", room=room)
            assert before.offset == 1
            raw = redis.Redis.from_url(server.url)
            old_run_id = raw.info("server")["run_id"]
            raw.save()
            raw.close()
            server.kill()
            server.start()
            after = publisher.publish("after", room=room)
        raw = redis.Redis.from_url(server.url)
        assert raw.info("server")["run_id"] != old_run_id
        raw.close()
        if durable:
            assert (after.epoch, after.offset) == (before.epoch, 2)
        else:
            assert after.epoch != before.epoch
            assert after.offset == 1
    finally:
        server.kill()


def test_parse_run_id() -> None:
    assert parse_run_id(b"# Server\r\nredis_version:7.0\r\nrun_id:abc123\r\n") == "abc123"
    assert parse_run_id("run_id:xyz\n") == "xyz"
    assert parse_run_id(b"") == ""


# ------------------------------------------------------------------ the example


def run_example(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "SWITCHBOARD_BROKER_URL"},
    )


async def test_the_example_publishes_with_history(cluster: Cluster) -> None:
    ws = await Ws.connect(cluster.a)
    joined = await ws.subscribe_with("public:lobby")
    cluster.redis.wait_subscribed("sb:v1:room:public:lobby")
    done = run_example("--url", cluster.redis.url, "--event", "build.finished", "--data", '{"b":1}')
    assert done.returncode == 0, done.stderr
    offset = joined["offset"] + 1
    assert "1 instance(s) listening" in done.stdout
    assert f"offset {offset}, epoch {joined['epoch']}" in done.stdout
    message = await ws.receive()
    assert message["offset"] == offset
    assert message["type"] == "EVENT"
    assert message["payload"] == {
        "event": "build.finished",
        "data": {"b": 1},
        "channel": "public:lobby",
    }
    again = run_example(
        "--url", cluster.redis.url, "--event", "x", "--idempotency-key", "ex-1", "--room", channel()
    )
    assert again.returncode == 0, again.stderr
    assert "0 instance(s) listening" in again.stdout
    assert "keeps a history" in again.stdout
    nobody = run_example("--url", cluster.redis.url, "--room", "nobody-here", "--text", "x")
    assert nobody.returncode == 3
    assert "nobody received it" in nobody.stderr
    unreachable = run_example("--url", "redis://127.0.0.1:1", "--text", "x")
    assert unreachable.returncode == 1
    assert "nothing was published" in unreachable.stderr
    await ws.close()
