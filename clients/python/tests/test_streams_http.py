"""Streams through the HTTP clients, against the real gateway (in-memory
broker, default ``[history]``: ``public:*`` and ``user:*``): offsets and
epochs, idempotent retries that deliver once, history reads, the new errors,
and a subscriber's recovery seen from Python."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from support import Gateway, LossyProxy, Ws

from switchboard_rt import (
    AsyncClient,
    BadRequestError,
    Client,
    Data,
    Event,
    HistoryQueryError,
    IdempotencyKeyError,
    NoHistoryError,
    NotFoundError,
    Notification,
    Retry,
    TransportError,
    UnsupportedFeatureError,
)

pytestmark = pytest.mark.anyio


def channel() -> str:
    return f"public:streams-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def client(gateway: Gateway) -> Iterator[Client]:
    with Client(gateway.url, api_key="") as c:
        yield c


async def test_publications_carry_their_offset_and_epoch(gateway: Gateway, client: Client) -> None:
    room = channel()
    ws = await Ws.connect(gateway)
    joined = await ws.subscribe_with(room)
    assert joined["offset"] == 0
    first = client.publish(Event("one"), room=room)
    second = client.publish(Event("two"), room=room)
    assert (first.offset, second.offset) == (1, 2)
    assert first.epoch == second.epoch == joined["epoch"]
    assert (first.duplicate, second.duplicate) == (False, False)
    for expected, result in ((1, first), (2, second)):
        message = await ws.receive()
        assert message["offset"] == expected
        assert message["id"] == result.id
    # Targets without history have no offset.
    other = client.publish(Event("x"), room=f"team:{uuid.uuid4().hex[:8]}")
    assert (other.offset, other.epoch) == (None, None)
    await ws.close()


async def test_a_replayed_key_is_a_duplicate_and_delivered_once(
    gateway: Gateway, client: Client
) -> None:
    room = channel()
    ws = await Ws.connect(gateway)
    await ws.subscribe(room)
    first = client.publish(Event("once"), room=room, idempotency_key="article-123")
    again = client.publish(Event("once"), room=room, idempotency_key="article-123")
    assert first.idempotency_key == again.idempotency_key == "article-123"
    assert (first.duplicate, again.duplicate) == (False, True)
    assert (again.offset, again.epoch) == (first.offset, first.epoch)
    assert again.id is None  # nothing new went out
    assert again.local == 0
    assert (await ws.receive())["payload"]["event"] == "once"
    await ws.expect_nothing()
    # Keys are per channel: the same key elsewhere is another message.
    elsewhere = client.publish(Event("once"), room=channel(), idempotency_key="article-123")
    assert elsewhere.duplicate is False
    await ws.close()


async def test_a_key_to_a_user_is_once_per_cluster(gateway: Gateway, client: Client) -> None:
    from conftest import JWT_SECRET

    from switchboard_rt import mint_token

    bob = f"bob-{uuid.uuid4().hex[:6]}"
    ws = await Ws.connect(gateway, token=mint_token(JWT_SECRET, bob))
    key = uuid.uuid4().hex
    first = client.publish(Notification("Hi", "once"), user=bob, idempotency_key=key)
    again = client.publish(Notification("Hi", "once"), user=bob, idempotency_key=key)
    assert (first.local, first.duplicate) == (1, False)
    assert (again.local, again.duplicate, again.offset) == (0, True, None)
    assert (await ws.receive())["payload"]["message"] == "once"
    await ws.expect_nothing()
    await ws.close()


async def test_a_retry_after_a_lost_answer_delivers_once(gateway: Gateway) -> None:
    # The gateway takes the publish, and its answer is lost on the way back:
    # the client retries with the same key and is told it was a duplicate.
    room = channel()
    ws = await Ws.connect(gateway)
    await ws.subscribe(room)
    proxy = LossyProxy(gateway, lose=1)
    try:
        with Client(proxy.url, api_key="", retry=Retry(attempts=3, backoff=0.01)) as client:
            result = client.publish(Event("exactly.once"), room=room)
        assert proxy.lost == 1
        assert result.attempts == 2
        assert result.duplicate is True
        assert result.offset == 1
        message = await ws.receive()
        assert (message["payload"]["event"], message["offset"]) == ("exactly.once", 1)
        await ws.expect_nothing()

        # Without keys the same loss delivers twice: what the keys are for.
        proxy.lose, proxy.lost = 1, 0
        with Client(
            proxy.url, api_key="", retry=Retry(attempts=3, backoff=0.01), idempotency="off"
        ) as plain:
            twice = plain.publish(Event("twice"), room=room)
        assert (twice.attempts, twice.duplicate, twice.offset) == (2, False, 3)
        assert [(await ws.receive())["offset"] for _ in range(2)] == [2, 3]

        # With retries off, the loss is reported as maybe delivered.
        proxy.lose, proxy.lost = 1, 0
        with (
            Client(proxy.url, api_key="", retry=Retry.none()) as once,
            pytest.raises(TransportError) as caught,
        ):
            once.publish(Event("unknown"), room=room)
        assert caught.value.maybe_delivered is True
        assert (await ws.receive())["payload"]["event"] == "unknown"
    finally:
        proxy.close()
    await ws.close()


async def test_async_retry_after_a_lost_answer_delivers_once(gateway: Gateway) -> None:
    room = channel()
    ws = await Ws.connect(gateway)
    await ws.subscribe(room)
    proxy = LossyProxy(gateway, lose=2)
    try:
        async with AsyncClient(
            proxy.url, api_key="", retry=Retry(attempts=4, backoff=0.01)
        ) as client:
            result = await client.publish(Data("orders/1", {"state": "shipped"}), room=room)
        assert (result.attempts, result.duplicate, result.offset) == (3, True, 1)
        assert (await ws.receive())["payload"]["resource"] == "orders/1"
        await ws.expect_nothing()
    finally:
        proxy.close()
    await ws.close()


def test_history_reads(client: Client) -> None:
    room = channel()
    deploy = Notification("Deploy", "v2", level="success", actions=[("Open", "o")])
    sent = [
        client.publish(Event("article.published", {"title": "Hello"}), room=room),
        client.publish(Data("orders/42", {"state": "shipped"}), room=room),
        client.publish(deploy, room=room),
        client.publish("plain text", room=room),
        client.publish('{"custom": true}', room=room),
    ]
    page = client.history(room)
    assert (page.channel, page.epoch, page.offset) == (room, sent[0].epoch, 5)
    assert [p.offset for p in page.publications] == [1, 2, 3, 4, 5]
    # Bare text to a channel is kept (and delivered) as the EVENT switchboard.text.
    assert [p.kind for p in page.publications] == ["message"] * 5
    event, data, notification, text, custom = page.publications
    assert event.message is not None
    assert event.message["id"] == sent[0].id
    assert event.message["offset"] == 1
    assert event.to_message() == Event("article.published", {"title": "Hello"})
    assert data.to_message() == Data("orders/42", {"state": "shipped"})
    assert notification.to_message() == deploy
    assert text.message is not None
    assert text.message["id"] == sent[3].id
    assert text.to_message() == Event("switchboard.text", "plain text")
    assert custom.to_message() == Event("switchboard.text", '{"custom": true}')

    assert [p.offset for p in client.history(room, limit=2).publications] == [1, 2]
    assert [p.offset for p in client.history(room, since=3).publications] == [4, 5]
    assert [p.offset for p in client.history(room, order="desc", limit=2).publications] == [5, 4]
    empty = client.history(channel())
    assert (empty.offset, empty.publications) == (0, [])


async def test_async_history(gateway: Gateway) -> None:
    room = channel()
    async with AsyncClient(gateway.url, api_key="") as client:
        published = await client.publish(Event("a"), room=room)
        page = await client.history(room, limit=10, since=0, order="asc")
        assert page.epoch == published.epoch
        assert [p.to_message() for p in page.publications] == [Event("a")]
        with pytest.raises(NoHistoryError):
            await client.history("team:none")


def test_history_errors(client: Client) -> None:
    with pytest.raises(NoHistoryError) as no_history:
        client.history(f"team:{uuid.uuid4().hex[:8]}")
    assert isinstance(no_history.value, NotFoundError)
    assert (no_history.value.status, no_history.value.code) == (404, "not_found")
    for bad in (0, 1001):
        with pytest.raises(HistoryQueryError) as caught:
            client.history(channel(), limit=bad)
        assert caught.value.field == "limit"
        assert caught.value.status == 400
    with pytest.raises(HistoryQueryError) as since:
        client.history(channel(), since=-1)
    assert since.value.field == "since"
    with pytest.raises(HistoryQueryError) as order:
        client.history(channel(), order="up")  # type: ignore[arg-type]
    assert order.value.field == "order"
    with pytest.raises(BadRequestError) as name:
        client.history("no spaces")
    assert type(name.value) is BadRequestError
    assert name.value.field == "channel"


def test_key_errors(client: Client, gateway: Gateway) -> None:
    with pytest.raises(IdempotencyKeyError) as caught:
        client.publish("x", room=channel(), idempotency_key="")
    assert caught.value.field == "idempotency_key"
    with (
        Client(gateway.url, api_key="", idempotency="off") as off,
        pytest.raises(UnsupportedFeatureError),
    ):
        off.publish("x", room=channel(), idempotency_key="mine")


async def test_a_subscriber_recovers_what_it_missed(gateway: Gateway, client: Client) -> None:
    room = channel()
    ws = await Ws.connect(gateway)
    joined = await ws.subscribe_with(room)
    first = client.publish(Event("seen"), room=room)
    message = await ws.receive()
    position = (joined["epoch"], message["offset"])
    await ws.close()
    missed = [client.publish(Event(f"missed.{n}"), room=room) for n in range(3)]
    assert [m.offset for m in missed] == [2, 3, 4]

    back = await Ws.connect(gateway)
    recovered = await back.subscribe_with(room, recover=position)
    assert (recovered["recovered"], recovered["epoch"], recovered["offset"]) == (
        True,
        first.epoch,
        4,
    )
    replayed = [await back.receive() for _ in missed]
    assert [(m["offset"], m["payload"]["event"]) for m in replayed] == [
        (2, "missed.0"),
        (3, "missed.1"),
        (4, "missed.2"),
    ]
    live = client.publish(Event("live"), room=room)
    assert (await back.receive())["offset"] == live.offset == 5
    await back.expect_nothing()

    # A position from another epoch does not recover, and says why.
    other = await Ws.connect(gateway)
    lost = await other.subscribe_with(room, recover=("0123456789abcdef", 1))
    assert (lost["recovered"], lost["reason"]) == (False, "epoch_changed")
    await back.close()
    await other.close()
