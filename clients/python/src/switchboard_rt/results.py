"""Typed answers of the gateway's HTTP API (and of the Redis publisher)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from .messages import Message, from_envelope

__all__ = [
    "Connection",
    "ConnectionCount",
    "ConnectionList",
    "DisconnectResult",
    "HistoryPage",
    "Publication",
    "PublishResult",
    "Readiness",
    "RedisPublishResult",
    "RoomInfo",
    "RoomList",
    "RoomSize",
    "ShutdownResult",
]


@dataclass(frozen=True)
class PublishResult:
    """The answer to ``POST /api/v1/publish``.

    Attributes:
        local: connections on the answering instance the message was queued for.
        forwarded: whether the broker took it for the other instances
            (``False`` only for a connection of the answering instance).
        id: the envelope ``id`` clients see, for structured messages.
        attempts: requests made (more than 1 after retries).
        offset: on a room with history, the publication's offset in the
            room's stream (``None`` for other targets).
        epoch: the stream's epoch, likewise.
        duplicate: ``True`` when the gateway had already taken a publish with
            the same idempotency key (a retry whose first attempt went
            through): ``offset`` and ``epoch`` are the first attempt's, and
            nothing was delivered this time.
        idempotency_key: the key sent with the publish, if any.
    """

    local: int
    forwarded: bool
    id: str | None = None
    attempts: int = 1
    offset: int | None = None
    epoch: str | None = None
    idempotency_key: str | None = None
    duplicate: bool = False

    @classmethod
    def from_json(
        cls, body: dict[str, Any], *, attempts: int = 1, idempotency_key: str | None = None
    ) -> PublishResult:
        offset = body.get("offset")
        epoch = body.get("epoch")
        return cls(
            local=int(body["local"]),
            forwarded=bool(body["forwarded"]),
            id=body.get("id"),
            attempts=attempts,
            offset=int(offset) if offset is not None else None,
            epoch=str(epoch) if epoch is not None else None,
            idempotency_key=idempotency_key,
            duplicate=bool(body.get("duplicate", False)),
        )


@dataclass(frozen=True)
class DisconnectResult:
    """The answer to a disconnect: ``local`` connections closed on the
    answering instance, and whether the close went to the others."""

    local: int
    forwarded: bool
    attempts: int = 1

    @classmethod
    def from_json(cls, body: dict[str, Any], *, attempts: int = 1) -> DisconnectResult:
        return cls(local=int(body["local"]), forwarded=bool(body["forwarded"]), attempts=attempts)


@dataclass(frozen=True)
class Connection:
    """One connection on the answering instance.

    Attributes:
        id: its id on that instance.
        address: its cluster address, ``instance/id``, usable from anywhere.
        user: the authenticated user, or ``None``.
        client_addr: the client's address and port.
        path: the endpoint it connected to (``/ws``).
        connected_at: when it connected (UTC).
        rooms: the rooms (channels) it is in.
    """

    id: int
    address: str
    user: str | None
    client_addr: str
    path: str
    connected_at: datetime
    rooms: list[str]

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Connection:
        user = body.get("user")
        return cls(
            id=int(body["id"]),
            address=str(body["address"]),
            user=str(user) if user is not None else None,
            client_addr=str(body["client_addr"]),
            path=str(body["path"]),
            connected_at=datetime.fromtimestamp(float(body["connected_at"]), tz=timezone.utc),
            rooms=[str(r) for r in body.get("rooms", [])],
        )


@dataclass(frozen=True)
class ConnectionList:
    """Connections of one instance: ``total`` matched, the first ``limit`` listed."""

    instance: str
    total: int
    connections: list[Connection]

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ConnectionList:
        return cls(
            instance=str(body["instance"]),
            total=int(body["total"]),
            connections=[Connection.from_json(c) for c in body["connections"]],
        )


@dataclass(frozen=True)
class ConnectionCount:
    """Open connections on the answering instance and across the cluster
    (other instances' counts are up to about a second old)."""

    local: int
    cluster: int

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ConnectionCount:
        return cls(local=int(body["local"]), cluster=int(body["cluster"]))


@dataclass(frozen=True)
class RoomSize:
    """A room and its number of members on the answering instance."""

    room: str
    size: int


@dataclass(frozen=True)
class RoomList:
    """Rooms with members on one instance."""

    instance: str
    total: int
    rooms: list[RoomSize]

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> RoomList:
        return cls(
            instance=str(body["instance"]),
            total=int(body["total"]),
            rooms=[RoomSize(room=str(r["room"]), size=int(r["size"])) for r in body["rooms"]],
        )


@dataclass(frozen=True)
class RoomInfo:
    """A room's size on the answering instance (``local``) and across the
    cluster, and its members' connection ids on the answering instance."""

    room: str
    local: int
    cluster: int
    members: list[int]

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> RoomInfo:
        return cls(
            room=str(body["room"]),
            local=int(body["local"]),
            cluster=int(body["cluster"]),
            members=[int(m) for m in body["members"]],
        )


@dataclass(frozen=True)
class ShutdownResult:
    """The answer to ``POST /api/v1/admin/shutdown``."""

    shutting_down: bool
    close_code: int

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ShutdownResult:
        return cls(shutting_down=bool(body["shutting_down"]), close_code=int(body["close_code"]))


@dataclass(frozen=True)
class Readiness:
    """``GET /readyz``: whether the instance takes new clients, and why not."""

    ready: bool
    listening: bool
    shutting_down: bool
    broker_type: str | None
    broker_connected: bool | None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Readiness:
        broker = body.get("broker") or {}
        connected = broker.get("connected")
        return cls(
            ready=bool(body.get("ready")),
            listening=bool(body.get("listening")),
            shutting_down=bool(body.get("shutting_down")),
            broker_type=broker.get("type"),
            broker_connected=bool(connected) if connected is not None else None,
        )


@dataclass(frozen=True)
class RedisPublishResult:
    """What a publish through Redis returns.

    Attributes:
        channel: the Redis channel written to.
        listening: how many gateway instances were subscribed to it (Redis's
            answer to ``PUBLISH``). ``0`` means nobody received the message
            now; on a room with history it is still in the room's stream, for
            clients that recover or read the history later.
        id: the envelope ``id`` clients see, for structured messages (``None``
            on a duplicate).
        offset: on a room with history (see
            :class:`~switchboard_rt.HistoryConfig`), the publication's offset
            in the room's stream; ``None`` otherwise.
        epoch: the stream's epoch, likewise.
        duplicate: ``True`` when the idempotency key had been seen: ``offset``
            and ``epoch`` are the first publish's, nothing was sent again.
        idempotency_key: the key the publish carried (rooms with history).
    """

    channel: str
    listening: int
    id: str | None = None
    offset: int | None = None
    epoch: str | None = None
    duplicate: bool = False
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Publication:
    """One publication a channel's stream keeps (``GET
    /api/v1/channels/{channel}/history``). Exactly one of ``message``,
    ``text`` and ``binary`` is set.

    Attributes:
        offset: its offset in the stream.
        message: the message as subscribers got it (a JSON object, with its
            ``offset``): a structured message's protocol envelope, or any
            JSON object published as raw text.
        text: raw text that is not a JSON object.
        binary: binary data.
    """

    offset: int
    message: dict[str, Any] | None = None
    text: str | None = None
    binary: bytes | None = None

    @property
    def kind(self) -> Literal["message", "text", "binary"]:
        """Which of ``message``, ``text`` and ``binary`` is set."""
        if self.message is not None:
            return "message"
        return "binary" if self.binary is not None else "text"

    def to_message(self) -> Message | None:
        """The :class:`~switchboard_rt.Event`, :class:`~switchboard_rt.Data`
        or :class:`~switchboard_rt.Notification` this publication carries, or
        ``None`` when it is not a structured message."""
        return from_envelope(self.message) if self.message is not None else None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Publication:
        message = body.get("message")
        text = body.get("text")
        binary = body.get("binary")
        return cls(
            offset=int(body["offset"]),
            message=message if isinstance(message, dict) else None,
            text=str(text) if text is not None else None,
            binary=base64.b64decode(binary) if binary is not None else None,
        )


@dataclass(frozen=True)
class HistoryPage:
    """A channel's stream (``GET /api/v1/channels/{channel}/history``).

    Attributes:
        channel: the channel.
        epoch: the stream's epoch (offsets of another epoch do not compare).
        offset: the offset of its latest publication (0: none in this epoch).
        publications: the publications asked for, in the order asked for.
    """

    channel: str
    epoch: str
    offset: int
    publications: list[Publication]

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> HistoryPage:
        return cls(
            channel=str(body["channel"]),
            epoch=str(body["epoch"]),
            offset=int(body["offset"]),
            publications=[Publication.from_json(p) for p in body.get("publications", [])],
        )
