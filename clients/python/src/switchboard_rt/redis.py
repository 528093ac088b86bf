"""Publishing through Redis, for workers that cannot reach the gateway's HTTP
API: the same messages and targets as :class:`~switchboard_rt.Client`, written
straight to the Redis that the gateway instances share (``broker.type =
"redis"``). Needs the ``redis`` extra: ``pip install 'switchboard-realtime[redis]'``.

This follows the **Redis wire format version 1** (docs/scaling.md). A message
to a **room with history** (``public:*`` and ``user:*`` unless ``history=``
says otherwise; it must say what the gateway's ``[history]`` says) goes
through the gateway's append script, as the gateway's own publishes do: it
gets an offset in the room's stream, an idempotency key (a fresh UUID unless
you give one, the same on every retry), and subscribers get it in order,
once, or recover it after a reconnection. Everything else (users,
connections, everyone, rooms without history, disconnects) is one
``PUBLISH``: at most once, reaching nobody when no instance listens
(``RedisPublishResult.listening == 0``) or Redis is down.

::

    from switchboard_rt import Notification
    from switchboard_rt.redis import RedisPublisher

    with RedisPublisher.from_url("redis://127.0.0.1:6379") as redis_publisher:
        result = redis_publisher.publish(Notification("Build", "finished"), room="public:builds")
        result.offset, result.epoch  # its place in the room's stream
"""

from __future__ import annotations

import hashlib
import os
import uuid
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
from .errors import RedisPublishError, UnsupportedFeatureError
from .history import HistoryConfig, HistoryRule
from .messages import Message
from .results import RedisPublishResult
from .targets import Target, resolve_target

__all__ = [
    "DEFAULT_REDIS_URL",
    "REDIS_URL_ENV",
    "AsyncRedisPublisher",
    "HistoryConfig",
    "HistoryRule",
    "RedisPublisher",
]

REDIS_URL_ENV = "SWITCHBOARD_BROKER_URL"
"""The environment variable the gateway reads its Redis URL from; the
publishers read it too."""
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"
WIRE_VERSION = wire.WIRE_VERSION

_APPEND_SHA = hashlib.sha1(wire.APPEND_SCRIPT.encode("utf-8")).hexdigest()
_RUN_ID_ATTR = "_switchboard_rt_run_id"
"""Where a pooled connection keeps the ``run_id`` of the server it is
connected to (forgotten when it reconnects)."""


def _url(url: str | None) -> str:
    return url or os.environ.get(REDIS_URL_ENV) or DEFAULT_REDIS_URL


def _error(exc: _rexc.RedisError) -> RedisPublishError:
    if isinstance(exc, _rexc.TimeoutError):
        return RedisPublishError(f"Redis did not answer in time: {exc}", maybe_delivered=True)
    # redis-py reports a failed connect as "Error N connecting to host:port".
    if isinstance(exc, _rexc.ConnectionError) and "connecting to" in str(exc):
        return RedisPublishError(f"cannot reach Redis: {exc}", maybe_delivered=False)
    return RedisPublishError(f"Redis failed: {type(exc).__name__}: {exc}", maybe_delivered=True)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def parse_run_id(info: Any) -> str:
    """The ``run_id`` in the text of ``INFO server`` (``''`` when absent)."""
    for line in _text(info).splitlines():
        if line.startswith("run_id:"):
            return line[len("run_id:") :].strip()
    return ""


class _Append:
    """One publish to a room with history: the append script's keys and
    arguments (all but the ``run_id``, which must be the one of the server
    the connection that runs the script talks to) and how to read its answer."""

    def __init__(
        self,
        prefix: str,
        history: HistoryConfig,
        rule: HistoryRule,
        frame: wire.Frame,
        key: str | None,
    ) -> None:
        assert frame.room is not None
        self.frame = frame
        self.key = key
        self.keys = wire.append_keys(prefix, frame.room, key)
        self.rule = rule
        self.history = history

    def args(self, run_id: str) -> list[str | int]:
        history = self.history
        return [
            self.frame.payload,
            self.rule.size,
            _ms(self.rule.ttl),
            _ms(history.meta_ttl),
            self.frame.channel,
            wire.new_epoch(),
            _ms(history.idempotency_window),
            "1" if history.durable else "0",
            run_id,
        ]

    def command(self, run_id: str, *, load: bool) -> list[str | int]:
        """``EVALSHA`` (or ``EVAL``, which also caches the script)."""
        head: list[str | int] = ["EVAL", wire.APPEND_SCRIPT] if load else ["EVALSHA", _APPEND_SHA]
        return [*head, len(self.keys), *self.keys, *self.args(run_id)]

    def result(self, answer: Any) -> RedisPublishResult:
        try:
            epoch, offset, duplicate, listening = answer
        except (TypeError, ValueError) as exc:
            raise RedisPublishError(
                f"unexpected answer from the append script: {answer!r}", maybe_delivered=True
            ) from exc
        dup = int(duplicate) == 1
        return RedisPublishResult(
            channel=self.frame.channel,
            listening=int(listening),
            id=None if dup else self.frame.id,
            offset=int(offset),
            epoch=_text(epoch),
            duplicate=dup,
            idempotency_key=self.key,
        )


class _Publisher:
    """What both publishers share: settings, and choosing between a bare
    ``PUBLISH`` and the append script."""

    def __init__(self, prefix: str, history: HistoryConfig | None, idempotency: bool) -> None:
        self.prefix = wire.check_prefix(prefix)
        self.history = history if history is not None else HistoryConfig()
        if not isinstance(self.history, HistoryConfig):
            raise TypeError("history: a HistoryConfig")
        self.idempotency = idempotency

    def _plan(self, frame: wire.Frame, idempotency_key: str | None) -> _Append | None:
        """The append for a room with history, or ``None`` for a ``PUBLISH``."""
        rule = self.history.rule_for(frame.room) if frame.room is not None else None
        if rule is None:
            if idempotency_key is not None:
                raise UnsupportedFeatureError(
                    "idempotency keys through Redis are for rooms with history (see"
                    " HistoryConfig): a message to anything else is one PUBLISH, at most once"
                )
            return None
        if idempotency_key is not None:
            key: str | None = wire.check_idempotency_key(idempotency_key)
        else:
            key = str(uuid.uuid4()) if self.idempotency else None
        return _Append(self.prefix, self.history, rule, frame, key)

    def _forget_run_id(self, connection: Any) -> None:
        """A connection (re)connected: the server may be another one."""
        vars(connection).pop(_RUN_ID_ATTR, None)

    def _known_run_id(self, connection: Any) -> str | None:
        run_id = vars(connection).get(_RUN_ID_ATTR)
        return run_id if isinstance(run_id, str) else None

    def _remember_run_id(self, connection: Any, run_id: str) -> None:
        vars(connection)[_RUN_ID_ATTR] = run_id
        connection.register_connect_callback(self._forget_run_id)


def _checkout(pool: Any) -> Any:
    try:
        return pool.get_connection()
    except TypeError:  # redis-py before 5.3 wants the command's name
        return pool.get_connection("EVALSHA")


class RedisPublisher(_Publisher):
    """Publishes to a Switchboard cluster through its Redis (blocking).

    Args:
        client: a ``redis.Redis`` to use (not closed by :meth:`close`); or
            build one with :meth:`from_url`.
        prefix: the cluster's channel prefix (``broker.prefix``, default ``sb``).
        history: which rooms keep a history, and for how long: **the same as
            the gateway's** ``[history]`` **and** ``broker.durable``. Default
            ``HistoryConfig()``, the gateway's
            defaults (``public:*`` and ``user:*``, 100 publications for 10
            minutes); ``HistoryConfig.none()`` when the gateway keeps none.
        idempotency: give every publish to a room with history a fresh
            idempotency key when none is passed (default ``True``), so that
            a retry, by redis-py's ``retry`` or by you with the same key,
            never delivers twice. Each key costs Redis about 100 bytes for
            the idempotency window (5 minutes).
    """

    def __init__(
        self,
        client: _redis.Redis,
        *,
        prefix: str = "sb",
        history: HistoryConfig | None = None,
        idempotency: bool = True,
    ) -> None:
        super().__init__(prefix, history, idempotency)
        self._redis = client
        self._owns = False

    @classmethod
    def from_url(
        cls,
        url: str | None = None,
        *,
        prefix: str = "sb",
        history: HistoryConfig | None = None,
        idempotency: bool = True,
        **redis_options: Any,
    ) -> RedisPublisher:
        """A publisher with its own connection pool to ``url`` (default
        ``$SWITCHBOARD_BROKER_URL``, else ``redis://127.0.0.1:6379``). Extra
        options go to ``redis.Redis.from_url`` (default 2 s connect and socket
        timeouts)."""
        redis_options.setdefault("socket_connect_timeout", 2.0)
        redis_options.setdefault("socket_timeout", 2.0)
        publisher = cls(
            _redis.Redis.from_url(_url(url), **redis_options),
            prefix=prefix,
            history=history,
            idempotency=idempotency,
        )
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

    def _append(self, append: _Append) -> RedisPublishResult:
        client: Any = self._redis
        pool = client.connection_pool
        single = getattr(client, "connection", None)
        try:
            connection = single if single is not None else _checkout(pool)
        except _rexc.RedisError as exc:
            raise _error(exc) from exc

        def attempt() -> Any:
            connection.connect()  # a reconnect forgets the run_id (the server may be new)
            run_id = self._known_run_id(connection)
            if run_id is None:
                run_id = self._run_id(connection)
            try:
                connection.send_command(*append.command(run_id, load=False))
                return connection.read_response()
            except _rexc.NoScriptError:
                connection.send_command(*append.command(run_id, load=True))
                return connection.read_response()

        def failed(error: Exception) -> None:
            connection.disconnect()
            self._forget_run_id(connection)

        try:
            answer = connection.retry.call_with_retry(attempt, failed)
        except _rexc.RedisError as exc:
            raise _error(exc) from exc
        finally:
            if single is None:
                pool.release(connection)
        return append.result(answer)

    def _run_id(self, connection: Any) -> str:
        try:
            connection.send_command("INFO", "server")
            run_id = parse_run_id(connection.read_response())
        except _rexc.ResponseError:
            run_id = ""  # INFO refused (an ACL, a renamed command): unknown
        self._remember_run_id(connection, run_id)
        return run_id

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
        idempotency_key: str | None = None,
    ) -> RedisPublishResult:
        """Publishes to exactly one target, like :meth:`switchboard_rt.Client.publish`.

        Through Redis, a connection is named by its cluster address
        (``"gw-1/42"``), for ``connection`` and ``exclude`` alike; ``bytes``
        go out as one binary frame. Room and user names are checked as the
        gateway checks them (``ValueError``).

        To a room with history (see ``history``), the message is appended to
        the room's stream by the gateway's append script, and the result has
        its ``offset`` and ``epoch``; ``idempotency_key`` (1-128 printable
        ASCII characters, no spaces; default a fresh UUID) makes a repeat
        within the idempotency window answer ``duplicate=True`` and send
        nothing. Anything else is one ``PUBLISH``.

        Raises:
            RedisPublishError: Redis refused or could not be reached
                (``maybe_delivered`` says whether it may have gone out; a
                retry with the result's key is safe on a room with history).
            UnsupportedFeatureError: ``idempotency_key`` for a target
                without history.
        """
        resolved = resolve_target(target, room=room, user=user, connection=connection, all=all)
        frame = wire.message_frame(self.prefix, resolved, message, exclude=exclude)
        append = self._plan(frame, idempotency_key)
        if append is None:
            return self._send(frame)
        return self._append(append)

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


class AsyncRedisPublisher(_Publisher):
    """The asyncio twin of :class:`RedisPublisher` (``redis.asyncio``), with
    the same arguments."""

    def __init__(
        self,
        client: _aredis.Redis,
        *,
        prefix: str = "sb",
        history: HistoryConfig | None = None,
        idempotency: bool = True,
    ) -> None:
        super().__init__(prefix, history, idempotency)
        self._redis = client
        self._owns = False

    @classmethod
    def from_url(
        cls,
        url: str | None = None,
        *,
        prefix: str = "sb",
        history: HistoryConfig | None = None,
        idempotency: bool = True,
        **redis_options: Any,
    ) -> AsyncRedisPublisher:
        """See :meth:`RedisPublisher.from_url`."""
        redis_options.setdefault("socket_connect_timeout", 2.0)
        redis_options.setdefault("socket_timeout", 2.0)
        publisher = cls(
            _aredis.Redis.from_url(_url(url), **redis_options),
            prefix=prefix,
            history=history,
            idempotency=idempotency,
        )
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

    async def _append(self, append: _Append) -> RedisPublishResult:
        client: Any = self._redis
        pool = client.connection_pool
        single = getattr(client, "connection", None)
        try:
            connection = single if single is not None else await _checkout(pool)
        except _rexc.RedisError as exc:
            raise _error(exc) from exc

        async def attempt() -> Any:
            await connection.connect()  # a reconnect forgets the run_id
            run_id = self._known_run_id(connection)
            if run_id is None:
                run_id = await self._run_id(connection)
            try:
                await connection.send_command(*append.command(run_id, load=False))
                return await connection.read_response()
            except _rexc.NoScriptError:
                await connection.send_command(*append.command(run_id, load=True))
                return await connection.read_response()

        async def failed(error: Exception) -> None:
            await connection.disconnect()
            self._forget_run_id(connection)

        try:
            answer = await connection.retry.call_with_retry(attempt, failed)
        except _rexc.RedisError as exc:
            raise _error(exc) from exc
        finally:
            if single is None:
                await pool.release(connection)
        return append.result(answer)

    async def _run_id(self, connection: Any) -> str:
        try:
            await connection.send_command("INFO", "server")
            run_id = parse_run_id(await connection.read_response())
        except _rexc.ResponseError:
            run_id = ""  # INFO refused (an ACL, a renamed command): unknown
        self._remember_run_id(connection, run_id)
        return run_id

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
        idempotency_key: str | None = None,
    ) -> RedisPublishResult:
        """See :meth:`RedisPublisher.publish`."""
        resolved = resolve_target(target, room=room, user=user, connection=connection, all=all)
        frame = wire.message_frame(self.prefix, resolved, message, exclude=exclude)
        append = self._plan(frame, idempotency_key)
        if append is None:
            return await self._send(frame)
        return await self._append(append)

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
