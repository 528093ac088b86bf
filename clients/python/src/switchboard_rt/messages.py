"""Typed messages mirroring the protocol's server-to-client types
(docs/protocol.md): ``EVENT``, ``DATA`` and ``NOTIFICATION``.

A message can send itself through the default publisher (an HTTP
:class:`~switchboard_rt.Client` configured from the environment, unless
:func:`~switchboard_rt.set_default_publisher` says otherwise)::

    Notification(title="Deploy", message="v2 is live", level="success").send(room="team:42")

or be handed to any publisher: ``client.publish(message, room=...)``,
``redis_publisher.publish(message, room=...)``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, cast, get_args

from .targets import Target

if TYPE_CHECKING:
    from .client import AsyncClient, Client
    from .redis import AsyncRedisPublisher, RedisPublisher
    from .results import PublishResult, RedisPublishResult

__all__ = [
    "Data",
    "Event",
    "Level",
    "Message",
    "Notification",
    "NotificationAction",
    "envelope",
    "from_envelope",
]

Level = Literal["info", "success", "warning", "error"]
"""How a notification should look."""

_LEVELS: frozenset[str] = frozenset(get_args(Level))


class _Sendable:
    """``send`` and ``send_async`` for the message types."""

    def send(
        self,
        *,
        room: str | None = None,
        user: str | None = None,
        connection: str | int | None = None,
        all: bool = False,
        target: Target | None = None,
        exclude: str | None = None,
        via: Client | RedisPublisher | None = None,
    ) -> PublishResult | RedisPublishResult:
        """Publishes this message to one target (exactly one of ``room``,
        ``user``, ``connection``, ``all=True`` or ``target``).

        Args:
            exclude: a connection to leave out (``42`` or ``"gw-1/42"``).
            via: the publisher to use; by default the process-wide one
                (see :func:`switchboard_rt.set_default_publisher`).
        """
        from . import _default

        publisher = via if via is not None else _default.publisher()
        return publisher.publish(
            cast("Message", self),
            room=room,
            user=user,
            connection=connection,
            all=all,
            target=target,
            exclude=exclude,
        )

    async def send_async(
        self,
        *,
        room: str | None = None,
        user: str | None = None,
        connection: str | int | None = None,
        all: bool = False,
        target: Target | None = None,
        exclude: str | None = None,
        via: AsyncClient | AsyncRedisPublisher | None = None,
    ) -> PublishResult | RedisPublishResult:
        """Like :meth:`send`, through an async publisher (by default one
        :class:`~switchboard_rt.AsyncClient` per event loop, configured from
        the environment)."""
        from . import _default

        publisher = via if via is not None else _default.async_publisher()
        return await publisher.publish(
            cast("Message", self),
            room=room,
            user=user,
            connection=connection,
            all=all,
            target=target,
            exclude=exclude,
        )


@dataclass(frozen=True)
class Event(_Sendable):
    """``EVENT``: a named application event with any JSON data.

    >>> Event("article.published", {"title": "Hello"}).to_api()
    {'type': 'EVENT', 'event': 'article.published', 'data': {'title': 'Hello'}}
    """

    TYPE: ClassVar[str] = "EVENT"

    event: str
    data: Any = None

    def __post_init__(self) -> None:
        _require_text("event", self.event)

    def payload(self) -> dict[str, Any]:
        """The protocol payload (without ``channel``)."""
        return {"event": self.event, "data": self.data}

    def to_api(self) -> dict[str, Any]:
        """The ``message`` object of ``POST /api/v1/publish``."""
        return {"type": self.TYPE, **self.payload()}


@dataclass(frozen=True)
class Data(_Sendable):
    """``DATA``: the current data of a resource (``messages``, ``orders/42``)."""

    TYPE: ClassVar[str] = "DATA"

    resource: str
    data: Any = None

    def __post_init__(self) -> None:
        _require_text("resource", self.resource)

    def payload(self) -> dict[str, Any]:
        """The protocol payload (without ``channel``)."""
        return {"resource": self.resource, "data": self.data}

    def to_api(self) -> dict[str, Any]:
        """The ``message`` object of ``POST /api/v1/publish``."""
        return {"type": self.TYPE, **self.payload()}


@dataclass(frozen=True)
class NotificationAction:
    """A notification's button: its label, and the action the client sends
    when it is pressed."""

    label: str
    action: str

    def to_api(self) -> dict[str, str]:
        """As JSON."""
        return {"label": self.label, "action": self.action}


@dataclass(frozen=True)
class Notification(_Sendable):
    """``NOTIFICATION``: something to show the user.

    ``level`` is ``"info"`` (the default), ``"success"``, ``"warning"`` or
    ``"error"``; ``actions`` are buttons, given as :class:`NotificationAction`
    or ``(label, action)`` pairs.
    """

    TYPE: ClassVar[str] = "NOTIFICATION"

    title: str
    message: str
    level: Level = "info"
    actions: Sequence[NotificationAction | tuple[str, str]] = field(default=())

    def __post_init__(self) -> None:
        _require_text("title", self.title)
        if not isinstance(self.message, str):
            raise TypeError("message: must be a string")
        if self.level not in _LEVELS:
            raise ValueError(f"level: {self.level!r} is not one of {', '.join(sorted(_LEVELS))}")
        actions = tuple(
            a if isinstance(a, NotificationAction) else NotificationAction(*a) for a in self.actions
        )
        object.__setattr__(self, "actions", actions)

    def payload(self) -> dict[str, Any]:
        """The protocol payload (without ``channel``)."""
        return {
            "title": self.title,
            "message": self.message,
            "level": self.level,
            "actions": [_action(a).to_api() for a in self.actions],
        }

    def to_api(self) -> dict[str, Any]:
        """The ``message`` object of ``POST /api/v1/publish``."""
        return {"type": self.TYPE, **self.payload()}


Message = Event | Data | Notification
"""A structured message. Publishers also take a plain ``str`` (sent as is, as
one text frame) and, through Redis only, ``bytes`` (one binary frame)."""


def envelope(
    message: Message,
    *,
    channel: str | None = None,
    id: str | None = None,
    timestamp: float | None = None,
) -> dict[str, Any]:
    """The protocol envelope a client receives for ``message``, as the gateway
    builds it for ``POST /api/v1/publish``: a fresh UUID ``id``, the current
    ``timestamp``, and ``channel`` in the payload when published to a room.

    The Redis publisher sends this, since no gateway code runs on that path.
    """
    payload = message.payload()
    if channel is not None:
        payload["channel"] = channel
    return {
        "type": message.TYPE,
        "id": id if id is not None else str(uuid.uuid4()),
        "timestamp": timestamp if timestamp is not None else time.time(),
        "payload": payload,
    }


def from_envelope(envelope: dict[str, Any]) -> Message | None:
    """The typed message of a protocol envelope a client received (or a
    channel's history kept): ``EVENT``, ``DATA`` or ``NOTIFICATION``, without
    its ``channel``, ``id``, ``timestamp`` and ``offset``; ``None`` for
    anything else."""
    kind = envelope.get("type")
    payload = envelope.get("payload")
    if not isinstance(payload, dict):
        return None
    try:
        if kind == Event.TYPE:
            return Event(payload["event"], payload.get("data"))
        if kind == Data.TYPE:
            return Data(payload["resource"], payload.get("data"))
        if kind == Notification.TYPE:
            actions = [
                NotificationAction(str(a["label"]), str(a["action"]))
                for a in payload.get("actions") or []
            ]
            return Notification(
                payload["title"], payload["message"], payload.get("level", "info"), actions
            )
    except (KeyError, TypeError, ValueError):
        return None
    return None


def _require_text(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name}: must be a string")
    if not value:
        raise ValueError(f"{name}: must not be empty")


def _action(action: NotificationAction | tuple[str, str]) -> NotificationAction:
    return action if isinstance(action, NotificationAction) else NotificationAction(*action)
