"""Redis wire format v1 (docs/scaling.md): channels and envelopes."""

from __future__ import annotations

import base64
import json

import pytest

from switchboard_rt import Event, Target
from switchboard_rt._wire_v1 import close_frame, message_frame
from switchboard_rt.redis import RedisPublisher


def test_channels_per_target() -> None:
    text = "hi"
    assert message_frame("sb", Target.room("lobby"), text).channel == "sb:v1:room:lobby"
    assert message_frame("sb", Target.user("auth0|5f"), text).channel == "sb:v1:user:auth0|5f"
    assert message_frame("x.y", Target.all(), text).channel == "x.y:v1:all"
    frame = message_frame("sb", Target.connection("gw-1/42"), text)
    assert frame.channel == "sb:v1:instance:gw-1"
    assert json.loads(frame.payload) == {"v": 1, "kind": "text", "data": "hi", "conn": 42}


def test_payloads() -> None:
    raw = message_frame("sb", Target.room("r"), b"\x00\xff", exclude="gw-2/7")
    assert json.loads(raw.payload) == {
        "v": 1,
        "kind": "binary",
        "data": base64.b64encode(b"\x00\xff").decode(),
        "except": "gw-2/7",
    }
    structured = message_frame("sb", Target.room("public:news"), Event("e", {"a": 1}))
    body = json.loads(structured.payload)
    assert body["kind"] == "text"
    inner = json.loads(body["data"])
    assert inner["type"] == "EVENT"
    assert inner["id"] == structured.id
    assert inner["payload"] == {"event": "e", "data": {"a": 1}, "channel": "public:news"}
    to_user = json.loads(
        json.loads(message_frame("sb", Target.user("u"), Event("e")).payload)["data"]
    )
    assert "channel" not in to_user["payload"]


def test_close() -> None:
    frame = close_frame("sb", Target.connection("gw/3"), 4403, "banned")
    assert json.loads(frame.payload) == {
        "v": 1,
        "kind": "close",
        "code": 4403,
        "reason": "banned",
        "conn": 3,
    }
    with pytest.raises(ValueError, match="code"):
        close_frame("sb", Target.all(), 1006, None)
    with pytest.raises(ValueError, match="reason"):
        close_frame("sb", Target.all(), 1000, "x" * 124)


def test_what_redis_cannot_address() -> None:
    with pytest.raises(ValueError, match="address"):
        message_frame("sb", Target.connection(42), "x")
    with pytest.raises(ValueError, match="address"):
        message_frame("sb", Target.all(), "x", exclude="42")
    with pytest.raises(ValueError, match="room"):
        message_frame("sb", Target.room("no spaces"), "x")
    with pytest.raises(ValueError, match="user"):
        message_frame("sb", Target.user(""), "x")
    with pytest.raises(ValueError, match="prefix"):
        RedisPublisher.from_url("redis://127.0.0.1:1", prefix="sb:v1")
    with pytest.raises(TypeError):
        message_frame("sb", Target.all(), 42)  # type: ignore[arg-type]
