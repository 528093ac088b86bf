"""Switchboard's Redis wire format, version 1 (docs/scaling.md, "The wire
format (version 1)"): the channel and the JSON envelope of a publish or a
close. Pure functions, no I/O; :mod:`switchboard_rt.redis` sends what they
build. A later wire version replaces this module, not the publishers' API.

Channels: ``<prefix>:v1:room:<room>``, ``<prefix>:v1:user:<user>``,
``<prefix>:v1:all``, ``<prefix>:v1:instance:<instance id>`` (one connection,
named by ``conn``). Envelope: ``{"v": 1, "kind": "text"|"binary"|"close",
"data"?, "code"?, "reason"?, "conn"?, "except"?}``.

Rooms with history are published to with the append script
(``scripts/append.lua``, a byte-for-byte copy of the gateway's
``crates/switchboard-redis/src/scripts/append.lua``; a Rust test keeps them
the same), on these keys (docs/scaling.md, "Keys"):
``<prefix>:v1:meta:{<room>}``, ``<prefix>:v1:stream:{<room>}`` and
``<prefix>:v1:idem:{<room>}:<key>``.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from dataclasses import dataclass
from importlib import resources
from typing import Any

from .messages import Data, Event, Message, Notification, envelope
from .targets import Target

__all__ = [
    "APPEND_SCRIPT",
    "WIRE_VERSION",
    "Frame",
    "append_keys",
    "check_idempotency_key",
    "close_frame",
    "message_frame",
    "new_epoch",
]

WIRE_VERSION = 1

APPEND_SCRIPT: str = (
    resources.files("switchboard_rt").joinpath("scripts/append.lua").read_text(encoding="utf-8")
)
"""The append script's text. Its header lists its keys and arguments."""

_PREFIX = re.compile(r"^[A-Za-z0-9._-]{1,32}$")
_CHANNEL = re.compile(r"^[A-Za-z0-9:_\-.@/=]{1,255}$")
_INSTANCE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True)
class Frame:
    """One Redis ``PUBLISH``: the channel and the envelope (JSON text), and
    the protocol ``id`` of a structured message."""

    channel: str
    payload: str
    id: str | None = None
    room: str | None = None
    """The room, for a message to a room (whose history the append script keeps)."""


def check_prefix(prefix: str) -> str:
    """A cluster prefix: 1-32 characters of ``A-Z a-z 0-9 - _ .``."""
    if not _PREFIX.match(prefix):
        raise ValueError(f"prefix: {prefix!r} must be 1-32 characters of A-Z a-z 0-9 - _ .")
    return prefix


def _room(room: str) -> str:
    if not _CHANNEL.match(room):
        raise ValueError(
            f"room: {room!r} is not a valid room: 1-255 characters of A-Z a-z 0-9 : _ - . @ / ="
        )
    return room


def _user(user: str) -> str:
    if not user or len(user.encode("utf-8")) > 255 or any(_is_control(c) for c in user):
        raise ValueError("user: not a valid user id: use 1-255 bytes without control characters")
    return user


def _is_control(c: str) -> bool:
    o = ord(c)
    return o < 0x20 or 0x7F <= o <= 0x9F


def _address(field: str, value: str | int) -> tuple[str, int]:
    """``instance/42`` -> (instance, 42). A bare id names no instance, and
    Redis has no "the instance that answers"."""
    text = str(value)
    instance, sep, conn = text.rpartition("/")
    if not sep or not _INSTANCE.match(instance) or not conn.isdigit():
        raise ValueError(
            f"{field}: {text!r} is not a connection address: through Redis, use the"
            " cluster address instance/42 (Connection.address from the HTTP API)"
        )
    return instance, int(conn)


def _target(prefix: str, target: Target) -> tuple[str, int | None, str | None]:
    """Channel, ``conn`` for an instance channel, and the protocol ``channel``
    of a room (structured messages carry it)."""
    base = f"{prefix}:v{WIRE_VERSION}"  # the publishers checked the prefix
    if target.kind == "room":
        room = _room(str(target.value))
        return f"{base}:room:{room}", None, room
    if target.kind == "user":
        return f"{base}:user:{_user(str(target.value))}", None, None
    if target.kind == "connection":
        instance, conn = _address("connection", str(target.value))
        return f"{base}:instance:{instance}", conn, None
    return f"{base}:all", None, None


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_dump = _ENCODER.encode


def message_frame(
    prefix: str,
    target: Target,
    message: Message | str | bytes,
    *,
    exclude: str | int | None = None,
) -> Frame:
    """The ``PUBLISH`` for a message: structured messages become the protocol
    envelope (text), ``str`` is sent as text, ``bytes`` as binary. ``prefix``
    must have passed :func:`check_prefix`."""
    channel, conn, room = _target(prefix, target)
    envelope_id: str | None = None
    body: dict[str, Any] = {"v": WIRE_VERSION}
    if isinstance(message, (Event, Data, Notification)):
        wire = envelope(message, channel=room)
        envelope_id = wire["id"]
        body["kind"] = "text"
        body["data"] = _dump(wire)
    elif isinstance(message, str):
        body["kind"] = "text"
        body["data"] = message
    elif isinstance(message, (bytes, bytearray, memoryview)):
        body["kind"] = "binary"
        body["data"] = base64.b64encode(bytes(message)).decode("ascii")
    else:
        raise TypeError(
            f"cannot publish a {type(message).__name__}: use Event, Data, Notification,"
            " str or bytes"
        )
    if conn is not None:
        body["conn"] = conn
    if exclude is not None:
        instance, excluded = _address("exclude", exclude)
        body["except"] = f"{instance}/{excluded}"
    return Frame(channel, _dump(body), envelope_id, room)


def check_idempotency_key(key: str) -> str:
    """An idempotency key as the gateway takes it: 1 to 128 printable ASCII
    characters, no spaces."""
    if not isinstance(key, str):
        raise TypeError("idempotency_key: must be a string")
    if not 1 <= len(key) <= 128 or not all("!" <= c <= "~" for c in key):
        raise ValueError("idempotency_key: 1 to 128 printable ASCII characters without spaces")
    return key


def append_keys(prefix: str, room: str, idempotency_key: str | None) -> list[str]:
    """The append script's ``KEYS``: the room's meta hash, its stream, and
    the idempotency key's name (or ``''``). Keys of one room share the hash
    tag ``{<room>}``."""
    base = f"{prefix}:v{WIRE_VERSION}"
    idem = f"{base}:idem:{{{room}}}:{idempotency_key}" if idempotency_key is not None else ""
    return [f"{base}:meta:{{{room}}}", f"{base}:stream:{{{room}}}", idem]


def new_epoch() -> str:
    """A fresh epoch for the append script (16 hex digits), used only if
    the room has none."""
    return secrets.token_hex(8)


def close_frame(prefix: str, target: Target, code: int, reason: str | None) -> Frame:
    """The ``PUBLISH`` that closes a target's connections with ``code`` and
    ``reason`` (the gateway's default reason when ``None``)."""
    if not isinstance(code, int) or not (
        1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999
    ):
        raise ValueError(
            f"code: {code!r} cannot be sent: use 1000-1003, 1007-1014 or 3000-4999"
            " (4000-4999 are your application's)"
        )
    reason = reason if reason is not None else "disconnected by the server"
    if len(reason.encode("utf-8")) > 123:
        raise ValueError("reason: at most 123 bytes (a close frame's limit)")
    channel, conn, _ = _target(prefix, target)
    body: dict[str, Any] = {"v": WIRE_VERSION, "kind": "close", "code": code, "reason": reason}
    if conn is not None:
        body["conn"] = conn
    return Frame(channel, _dump(body))
