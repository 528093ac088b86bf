"""Typed messages: what they send over HTTP and as protocol envelopes."""

from __future__ import annotations

import json

import pytest

from switchboard_rt import Data, Event, Notification, NotificationAction, Target
from switchboard_rt.messages import envelope
from switchboard_rt.targets import resolve_target


def test_event_data_and_notification_as_the_api_takes_them() -> None:
    assert Event("article.published", {"title": "Hello"}).to_api() == {
        "type": "EVENT",
        "event": "article.published",
        "data": {"title": "Hello"},
    }
    assert Data("orders/42", [1, 2]).to_api() == {
        "type": "DATA",
        "resource": "orders/42",
        "data": [1, 2],
    }
    note = Notification(
        title="Deploy",
        message="v2 is live",
        level="success",
        actions=[("Open", "open_release"), NotificationAction("Undo", "undo")],
    )
    assert note.to_api() == {
        "type": "NOTIFICATION",
        "title": "Deploy",
        "message": "v2 is live",
        "level": "success",
        "actions": [
            {"label": "Open", "action": "open_release"},
            {"label": "Undo", "action": "undo"},
        ],
    }
    assert Notification("t", "m").to_api()["level"] == "info"


def test_messages_refuse_what_the_gateway_would_refuse() -> None:
    with pytest.raises(ValueError, match="level"):
        Notification("t", "m", level="loud")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="event"):
        Event("")
    with pytest.raises(ValueError, match="resource"):
        Data("")
    with pytest.raises(ValueError, match="title"):
        Notification("", "m")
    with pytest.raises(TypeError):
        Event(42)  # type: ignore[arg-type]


def test_messages_are_frozen_and_hashable_values() -> None:
    a = Notification("t", "m", actions=[("A", "a")])
    b = Notification("t", "m", actions=(NotificationAction("A", "a"),))
    assert a == b
    with pytest.raises(AttributeError):
        a.title = "x"  # type: ignore[misc]


def test_envelope_matches_the_gateways() -> None:
    wire = envelope(Event("x", 1), channel="public:news", id="abc", timestamp=12.5)
    assert wire == {
        "type": "EVENT",
        "id": "abc",
        "timestamp": 12.5,
        "payload": {"event": "x", "data": 1, "channel": "public:news"},
    }
    fresh = envelope(Notification("t", "m"))
    assert "channel" not in fresh["payload"]
    assert len(fresh["id"]) == 36
    json.dumps(fresh)


def test_exactly_one_target() -> None:
    assert resolve_target(room="r") == Target.room("r")
    assert resolve_target(connection=42) == Target("connection", "42")
    assert resolve_target(all=True).to_api() == {"all": True}
    assert resolve_target(Target.user("u")).to_api() == {"user": "u"}
    with pytest.raises(TypeError, match="exactly one"):
        resolve_target()
    with pytest.raises(TypeError, match="exactly one"):
        resolve_target(room="r", user="u")
