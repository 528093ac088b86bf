"""Publishing through Redis, for workers that cannot reach the gateway's HTTP
API: the same messages and targets as :class:`~switchboard_rt.Client`, written
straight to the Redis that the gateway instances share (``broker.type =
"redis"``). Needs the ``redis`` extra: ``pip install 'switchboard-realtime[redis]'``.

This follows the **Redis wire format version 1** (docs/scaling.md): one
``PUBLISH`` per message on ``<prefix>:v1:...`` channels. Like every Redis
pub/sub delivery it is at most once: a message published while no instance
listens to the channel (``RedisPublishResult.listening == 0``), or while
Redis is down, reaches nobody. The HTTP client is the better choice when it
is available: it reports local deliveries and, once the gateway keeps
streams, publishes with offsets and idempotency keys.

::

    from switchboard_rt import Notification
    from switchboard_rt.redis import RedisPublisher

    with RedisPublisher.from_url("redis://127.0.0.1:6379") as redis_publisher:
        redis_publisher.publish(Notification("Build", "finished"), room="team:42")
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any

try:
    import redis as _redis
    import redis.asyncio as _aredis
    from redis import exceptions as _rexc
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "switchboard_rt.redis needs the redis package: pip install 'switchboard-realtime[redis]'"
    ) from exc

from . import _wire_v1 as wire
from .errors import RedisPublishError
from .messages import Message
from .results import RedisPublishResult
from .targets import Target, resolve_target

__all__ = ["DEFAULT_REDIS_URL", "REDIS_URL_ENV", "AsyncRedisPublisher", "RedisPublisher"]

REDIS_URL_ENV = "SWITCHBOARD_BROKER_URL"
"""The environment variable the gateway reads its Redis URL from; the
publishers read it too."""
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"
WIRE_VERSION = wire.WIRE_VERSION


def _url(url: str | None) -> str:
    return url or os.environ.get(REDIS_URL_ENV) or DEFAULT_REDIS_URL


def _error(exc: _rexc.RedisError) -> RedisPublishError:
    if isinstance(exc, _rexc.TimeoutError):
        return RedisPublishError(f"Redis did not answer in time: {exc}", maybe_delivered=True)
    # redis-py reports a failed connect as "Error N connecting to host:port".
    if isinstance(exc, _rexc.ConnectionError) and "connecting to" in str(exc):
        return RedisPublishError(f"cannot reach Redis: {exc}", maybe_delivered=False)
    return RedisPublishError(f"Redis failed: {type(exc).__name__}: {exc}", maybe_delivered=True)


class RedisPublisher:
    """Publishes to a Switchboard cluster through its Redis (blocking).

    Args:
        client: a ``redis.Redis`` to use (not closed by :meth:`close`); or
            build one with :meth:`from_url`.
        prefix: the cluster's channel prefix (``broker.prefix``, default ``sb``).
    """

    def __init__(self, client: _redis.Redis, *, prefix: str = "sb") -> None:
        self.prefix = wire.check_prefix(prefix)
        self._redis = client
        self._owns = False

    @classmethod
    def from_url(
        cls, url: str | None = None, *, prefix: str = "sb", **redis_options: Any
    ) -> RedisPublisher:
        """A publisher with its own connection pool to ``url`` (default
        ``$SWITCHBOARD_BROKER_URL``, else ``redis://127.0.0.1:6379``). Extra
        options go to ``redis.Redis.from_url`` (default 2 s connect and socket
        timeouts)."""
        redis_options.setdefault("socket_connect_timeout", 2.0)
        redis_options.setdefault("socket_timeout", 2.0)
        publisher = cls(_redis.Redis.from_url(_url(url), **redis_options), prefix=prefix)
        publisher._owns = True
        return publisher

    def close(self) -> None:
        """Closes the connection pool, if :meth:`from_url` made it."""
        if self._owns:
            self._redis.close()

    def __enter__(self) -> RedisPublisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _send(self, frame: wire.Frame) -> RedisPublishResult:
        try:
            listening = self._redis.publish(frame.channel, frame.payload)
        except _rexc.RedisError as exc:
            raise _error(exc) from exc
        return RedisPublishResult(channel=frame.channel, listening=int(listening), id=frame.id)

    def publish(
        self,
        message: Message | str | bytes,
        *,
        room: str | None = None,
        user: str | None = None,
        connection: str | int | None = None,
        all: bool = False,
        target: Target | None = None,
        exclude: str | int | None = None,
    ) -> RedisPublishResult:
        """Publishes to exactly one target, like :meth:`switchboard_rt.Client.publish`.

        Through Redis, a connection is named by its cluster address
        (``"gw-1/42"``), for ``connection`` and ``exclude`` alike; ``bytes``
        go out as one binary frame. Room and user names are checked as the
        gateway checks them (``ValueError``).

        Raises:
            RedisPublishError: Redis refused or could not be reached.
        """
        resolved = resolve_target(target, room=room, user=user, connection=connection, all=all)
        return self._send(wire.message_frame(self.prefix, resolved, message, exclude=exclude))

    def disconnect(
        self,
        *,
        room: str | None = None,
        user: str | None = None,
        connection: str | int | None = None,
        all: bool = False,
        target: Target | None = None,
        code: int = 1000,
        reason: str | None = None,
    ) -> RedisPublishResult:
        """Closes a target's connections on every instance (``code``:
        1000-1003, 1007-1014, 3000-4999; ``reason`` at most 123 bytes)."""
        resolved = resolve_target(target, room=room, user=user, connection=connection, all=all)
        return self._send(wire.close_frame(self.prefix, resolved, code, reason))


class AsyncRedisPublisher:
    """The asyncio twin of :class:`RedisPublisher` (``redis.asyncio``)."""

    def __init__(self, client: _aredis.Redis, *, prefix: str = "sb") -> None:
        self.prefix = wire.check_prefix(prefix)
        self._redis = client
        self._owns = False

    @classmethod
    def from_url(
        cls, url: str | None = None, *, prefix: str = "sb", **redis_options: Any
    ) -> AsyncRedisPublisher:
        """See :meth:`RedisPublisher.from_url`."""
        redis_options.setdefault("socket_connect_timeout", 2.0)
        redis_options.setdefault("socket_timeout", 2.0)
        publisher = cls(_aredis.Redis.from_url(_url(url), **redis_options), prefix=prefix)
        publisher._owns = True
        return publisher

    async def aclose(self) -> None:
        """Closes the connection pool, if :meth:`from_url` made it."""
        if self._owns:
            await self._redis.aclose()

    async def __aenter__(self) -> AsyncRedisPublisher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _send(self, frame: wire.Frame) -> RedisPublishResult:
        try:
            listening = await self._redis.publish(frame.channel, frame.payload)
        except _rexc.RedisError as exc:
            raise _error(exc) from exc
        return RedisPublishResult(channel=frame.channel, listening=int(listening), id=frame.id)

    async def publish(
        self,
        message: Message | str | bytes,
        *,
        room: str | None = None,
        user: str | None = None,
        connection: str | int | None = None,
        all: bool = False,
        target: Target | None = None,
        exclude: str | int | None = None,
    ) -> RedisPublishResult:
        """See :meth:`RedisPublisher.publish`."""
        resolved = resolve_target(target, room=room, user=user, connection=connection, all=all)
        return await self._send(wire.message_frame(self.prefix, resolved, message, exclude=exclude))

    async def disconnect(
        self,
        *,
        room: str | None = None,
        user: str | None = None,
        connection: str | int | None = None,
        all: bool = False,
        target: Target | None = None,
        code: int = 1000,
        reason: str | None = None,
    ) -> RedisPublishResult:
        """See :meth:`RedisPublisher.disconnect`."""
        resolved = resolve_target(target, room=room, user=user, connection=connection, all=all)
        return await self._send(wire.close_frame(self.prefix, resolved, code, reason))
