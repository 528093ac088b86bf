"""HTTP clients for the gateway's API (docs/operations.md, "The HTTP API"):
:class:`Client` (blocking) and :class:`AsyncClient` (asyncio), with the same
methods."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx

from . import _core
from ._core import Attempts, Call, HistoryOrder, IdempotencyMode
from .errors import ApiError, SwitchboardError
from .messages import Message
from .results import (
    Connection,
    ConnectionCount,
    ConnectionList,
    DisconnectResult,
    HistoryPage,
    PublishResult,
    Readiness,
    RoomInfo,
    RoomList,
    ShutdownResult,
)
from .retry import Retry
from .targets import Target, resolve_target

__all__ = ["AsyncClient", "Client"]

T = TypeVar("T")

_RECHECK_AFTER = 300.0
"""Seconds after which ``idempotency="auto"`` asks the gateway again whether
it takes idempotency keys (a gateway upgraded under a running worker)."""

_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)
"""One pool per client. Idle connections are dropped after 5 s, before the
gateway closes idle keep-alive connections (10 s)."""


class _Base:
    """Configuration shared by both clients."""

    def __init__(
        self,
        url: str | None,
        api_key: str | None,
        retry: Retry | None,
        idempotency: IdempotencyMode,
    ) -> None:
        if idempotency not in ("auto", "on", "off"):
            raise ValueError("idempotency: 'auto', 'on' or 'off'")
        self.url = _core.resolve_url(url)
        self._api_key = _core.resolve_api_key(api_key)
        self.retry = retry if retry is not None else Retry()
        self.idempotency: IdempotencyMode = idempotency
        # Whether the gateway takes idempotency keys, and when that was learnt.
        self._support: tuple[bool, float] | None = None

    def _must_check_support(self) -> bool:
        if self.idempotency != "auto":
            return False
        return self._support is None or time.monotonic() - self._support[1] > _RECHECK_AFTER

    def _learn_support(self, answer: Any | ApiError) -> None:
        supported = not isinstance(answer, ApiError) and _core.advertises_idempotency(answer)
        self._support = (supported, time.monotonic())

    def _supported(self) -> bool:
        return self._support is not None and self._support[0]

    def _refused_key(self, error: ApiError, key: str | None, explicit: str | None) -> bool:
        """A 400 naming ``idempotency_key`` for a key we chose: an instance that
        does not take keys (a rolling upgrade behind a load balancer). Forget
        the support and publish again without a key."""
        if self.idempotency != "auto" or key is None or explicit is not None:
            return False
        if error.status != 400:
            return False
        if "idempotency_key" not in error.message:
            return False
        self._support = (False, time.monotonic())
        return True

    def __repr__(self) -> str:
        key = "set" if self._api_key else "none"
        return f"{type(self).__name__}(url={self.url!r}, api_key={key})"

    def _policy(self, call: Call[Any]) -> Retry:
        return self.retry if call.retry else Retry.none()


class Client(_Base):
    """A blocking client for the gateway's HTTP API.

    One client holds one connection pool: create it once and share it (it is
    thread-safe), and close it (``with Client() as client:`` or
    :meth:`close`) when done.

    Args:
        url: the gateway, such as ``http://127.0.0.1:8080``; default
            ``$SWITCHBOARD_URL``, else ``http://127.0.0.1:8080``.
        api_key: sent as ``Authorization: Bearer``; default
            ``$SWITCHBOARD_API_KEY`` (none when unset or empty).
        timeout: seconds, or an :class:`httpx.Timeout`; default 5 s (2 s to connect).
        retry: when to retry (:class:`~switchboard_rt.Retry`); default 3
            attempts with backoff. ``Retry.none()`` for at-most-once.
        idempotency: ``"auto"`` (default) sends an idempotency key with every
            publish, the same on its retries, when the gateway advertises
            support in its OpenAPI document (read before the first publish and
            every 5 minutes; a 400 naming ``idempotency_key``, from an instance
            not yet upgraded, turns keys off and publishes again without one);
            ``"on"`` always sends one; ``"off"`` never does.
        headers: extra headers for every request.
        http_client: an :class:`httpx.Client` to use instead of the client's
            own (it is not closed by :meth:`close`).
        transport: an httpx transport for the client's own pool (a Unix
            socket, a proxy, or :class:`httpx.MockTransport` in tests).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        retry: Retry | None = None,
        idempotency: IdempotencyMode = "auto",
        headers: Mapping[str, str] | None = None,
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(url, api_key, retry, idempotency)
        self._owns_http = http_client is None
        all_headers = _core.headers(self._api_key, headers)
        # Our own pool carries the headers; a given one gets them per request.
        self._http = http_client or httpx.Client(
            timeout=timeout if timeout is not None else _core.DEFAULT_TIMEOUT,
            limits=_LIMITS,
            headers=all_headers,
            transport=transport,
        )
        self._headers: dict[str, str] | None = None if self._owns_http else all_headers

    # -- plumbing

    def close(self) -> None:
        """Closes the connection pool (unless it was given)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self, call: Call[T]) -> T:
        attempts = Attempts(self._policy(call))
        kwargs = call.request_kwargs()
        while True:
            count = attempts.start()
            try:
                response = self._http.request(
                    call.method, self.url + call.path, headers=self._headers, **kwargs
                )
            except httpx.TransportError as exc:
                error = _core.transport_error(exc, count)
                delay = attempts.retry_delay(error)
                if delay is None:
                    raise error from exc
            else:
                try:
                    return call.finish(response, count)
                except ApiError as exc:
                    delay = attempts.retry_delay(exc)
                    if delay is None:
                        raise
            time.sleep(delay)

    def _key(self, explicit: str | None) -> str | None:
        if self._must_check_support():
            try:
                self._learn_support(self._run(_core.openapi_call()))
            except ApiError as exc:
                self._learn_support(exc)
            except SwitchboardError:
                pass  # no answer: ask again next time
        return _core.choose_key(self.idempotency, self._supported(), explicit)

    def supports_idempotency(self) -> bool:
        """Whether the gateway accepts idempotency keys on publish: it lists
        ``idempotency_key`` in its OpenAPI document. Asks now; with
        ``idempotency="auto"`` the client asks before its first publish and
        again every 5 minutes."""
        try:
            self._learn_support(self._run(_core.openapi_call()))
        except ApiError as exc:
            self._learn_support(exc)
        except SwitchboardError:
            return False
        return self._supported()

    # -- publishing

    def publish(
        self,
        message: Message | str,
        *,
        room: str | None = None,
        user: str | None = None,
        connection: str | int | None = None,
        all: bool = False,
        target: Target | None = None,
        exclude: str | int | None = None,
        idempotency_key: str | None = None,
    ) -> PublishResult:
        """Publishes a message to exactly one target, on every instance.

        Args:
            message: an :class:`~switchboard_rt.Event`, :class:`~switchboard_rt.Data`
                or :class:`~switchboard_rt.Notification` (clients get the
                protocol envelope, with ``channel`` when sent to a room), or a
                ``str`` sent as is.
            room: a room or channel (``public:news``).
            user: every connection of a user.
            connection: one connection, ``42`` (on the answering instance) or
                ``"gw-1/42"`` (anywhere).
            all: every connection.
            target: a :class:`~switchboard_rt.Target` instead of the above.
            exclude: a connection to leave out (the API's ``except``).
            idempotency_key: your own name for this message (1-128 printable
                ASCII characters, no spaces), instead of a fresh UUID: a
                publish with a key the gateway saw within its idempotency
                window (5 minutes) answers ``duplicate=True`` and delivers
                nothing. Only where the gateway supports keys.

        Returns:
            :class:`~switchboard_rt.PublishResult`; on a room with history
            it has the publication's ``offset`` and ``epoch``.

        Raises:
            BadRequestError: an invalid room, user, connection or message
                (:class:`~switchboard_rt.IdempotencyKeyError` for a bad key).
            BrokerUnavailableError: the broker failed after all retries. On a
                room with history nothing was delivered; otherwise the
                answering instance's connections got the message
                (``error.local``), other instances did not.
            UnauthorizedError: a missing or wrong API key.
            TransportError: no answer (``error.maybe_delivered`` says whether
                the message may have gone out).
        """
        resolved = resolve_target(target, room=room, user=user, connection=connection, all=all)
        key = self._key(idempotency_key)
        try:
            return self._run(
                _core.publish_call(resolved, message, exclude=exclude, idempotency_key=key)
            )
        except ApiError as exc:
            if not self._refused_key(exc, key, idempotency_key):
                raise
        return self._run(
            _core.publish_call(resolved, message, exclude=exclude, idempotency_key=None)
        )

    def broadcast(
        self, message: Message | str, *, exclude: str | int | None = None
    ) -> PublishResult:
        """Publishes to every connection (``publish(message, all=True)``)."""
        return self.publish(message, all=True, exclude=exclude)

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
    ) -> DisconnectResult:
        """Closes a target's connections on every instance with ``code``
        (1000, 1001, 1008, 1011-1013, or 3000-4999: 4000-4999 are yours) and
        ``reason`` (at most 123 bytes)."""
        resolved = resolve_target(target, room=room, user=user, connection=connection, all=all)
        return self._run(_core.disconnect_call(resolved, code, reason))

    # -- reading

    def connections(
        self, *, room: str | None = None, user: str | None = None, limit: int | None = None
    ) -> ConnectionList:
        """The answering instance's connections, optionally of one room or one
        user (not both); at most ``limit`` listed (gateway default 100)."""
        return self._run(_core.connections_call(room, user, limit))

    def connection_count(self) -> ConnectionCount:
        """Open connections here and across the cluster."""
        return self._run(_core.connection_count_call())

    def connection(self, connection: str | int) -> Connection:
        """One connection of the answering instance (id or address).

        Raises:
            NotFoundError: no such connection there.
        """
        return self._run(_core.connection_call(connection))

    def user_connections(self, user: str) -> ConnectionList:
        """A user's connections on the answering instance."""
        return self._run(_core.user_connections_call(user))

    def rooms(self, *, limit: int | None = None) -> RoomList:
        """Rooms with members on the answering instance, with their sizes."""
        return self._run(_core.rooms_call(limit))

    def room(self, room: str) -> RoomInfo:
        """A room's size here and across the cluster, and its members here."""
        return self._run(_core.room_call(room))

    def history(
        self,
        channel: str,
        *,
        limit: int | None = None,
        since: int | None = None,
        order: HistoryOrder | None = None,
    ) -> HistoryPage:
        """A channel's kept publications (``GET
        /api/v1/channels/{channel}/history``), for channels with history
        (the gateway's ``[history]``: ``public:*`` and ``user:*`` by default).

        Args:
            limit: at most this many (1 to 1000; the gateway's default 100).
            since: only publications after this offset of the current epoch.
            order: ``"asc"`` (oldest first, the default) or ``"desc"``.

        Raises:
            NoHistoryError: the channel keeps no history.
            HistoryQueryError: ``limit`` outside 1 to 1000, or a bad
                ``since``/``order``.
            BadRequestError: an invalid channel name.
        """
        return self._run(_core.history_call(channel, limit, since, order))

    def readiness(self) -> Readiness:
        """``GET /readyz``: listening, not shutting down, broker connected."""
        return self._run(_core.readiness_call())

    def shutdown(self, *, restart: bool = False) -> ShutdownResult:
        """Graceful shutdown (clients get 1001, or 1012 with ``restart``).
        Needs an API key configured on the gateway (otherwise
        :class:`~switchboard_rt.errors.ForbiddenError`). Never retried."""
        return self._run(_core.shutdown_call(restart))


class AsyncClient(_Base):
    """The asyncio twin of :class:`Client`: the same arguments and methods,
    each a coroutine. Use one per event loop, and close it
    (``async with AsyncClient() as client:`` or ``await client.aclose()``)."""

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        retry: Retry | None = None,
        idempotency: IdempotencyMode = "auto",
        headers: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(url, api_key, retry, idempotency)
        self._owns_http = http_client is None
        all_headers = _core.headers(self._api_key, headers)
        # Our own pool carries the headers; a given one gets them per request.
        self._http = http_client or httpx.AsyncClient(
            timeout=timeout if timeout is not None else _core.DEFAULT_TIMEOUT,
            limits=_LIMITS,
            headers=all_headers,
            transport=transport,
        )
        self._headers: dict[str, str] | None = None if self._owns_http else all_headers

    async def aclose(self) -> None:
        """Closes the connection pool (unless it was given)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _run(self, call: Call[T]) -> T:
        attempts = Attempts(self._policy(call))
        kwargs = call.request_kwargs()
        while True:
            count = attempts.start()
            try:
                response = await self._http.request(
                    call.method, self.url + call.path, headers=self._headers, **kwargs
                )
            except httpx.TransportError as exc:
                error = _core.transport_error(exc, count)
                delay = attempts.retry_delay(error)
                if delay is None:
                    raise error from exc
            else:
                try:
                    return call.finish(response, count)
                except ApiError as exc:
                    delay = attempts.retry_delay(exc)
                    if delay is None:
                        raise
            await asyncio.sleep(delay)

    async def _key(self, explicit: str | None) -> str | None:
        if self._must_check_support():
            try:
                self._learn_support(await self._run(_core.openapi_call()))
            except ApiError as exc:
                self._learn_support(exc)
            except SwitchboardError:
                pass  # no answer: ask again next time
        return _core.choose_key(self.idempotency, self._supported(), explicit)

    async def supports_idempotency(self) -> bool:
        """See :meth:`Client.supports_idempotency`."""
        try:
            self._learn_support(await self._run(_core.openapi_call()))
        except ApiError as exc:
            self._learn_support(exc)
        except SwitchboardError:
            return False
        return self._supported()

    async def publish(
        self,
        message: Message | str,
        *,
        room: str | None = None,
        user: str | None = None,
        connection: str | int | None = None,
        all: bool = False,
        target: Target | None = None,
        exclude: str | int | None = None,
        idempotency_key: str | None = None,
    ) -> PublishResult:
        """See :meth:`Client.publish`."""
        resolved = resolve_target(target, room=room, user=user, connection=connection, all=all)
        key = await self._key(idempotency_key)
        try:
            return await self._run(
                _core.publish_call(resolved, message, exclude=exclude, idempotency_key=key)
            )
        except ApiError as exc:
            if not self._refused_key(exc, key, idempotency_key):
                raise
        return await self._run(
            _core.publish_call(resolved, message, exclude=exclude, idempotency_key=None)
        )

    async def broadcast(
        self, message: Message | str, *, exclude: str | int | None = None
    ) -> PublishResult:
        """See :meth:`Client.broadcast`."""
        return await self.publish(message, all=True, exclude=exclude)

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
    ) -> DisconnectResult:
        """See :meth:`Client.disconnect`."""
        resolved = resolve_target(target, room=room, user=user, connection=connection, all=all)
        return await self._run(_core.disconnect_call(resolved, code, reason))

    async def connections(
        self, *, room: str | None = None, user: str | None = None, limit: int | None = None
    ) -> ConnectionList:
        """See :meth:`Client.connections`."""
        return await self._run(_core.connections_call(room, user, limit))

    async def connection_count(self) -> ConnectionCount:
        """See :meth:`Client.connection_count`."""
        return await self._run(_core.connection_count_call())

    async def connection(self, connection: str | int) -> Connection:
        """See :meth:`Client.connection`."""
        return await self._run(_core.connection_call(connection))

    async def user_connections(self, user: str) -> ConnectionList:
        """See :meth:`Client.user_connections`."""
        return await self._run(_core.user_connections_call(user))

    async def rooms(self, *, limit: int | None = None) -> RoomList:
        """See :meth:`Client.rooms`."""
        return await self._run(_core.rooms_call(limit))

    async def room(self, room: str) -> RoomInfo:
        """See :meth:`Client.room`."""
        return await self._run(_core.room_call(room))

    async def history(
        self,
        channel: str,
        *,
        limit: int | None = None,
        since: int | None = None,
        order: HistoryOrder | None = None,
    ) -> HistoryPage:
        """See :meth:`Client.history`."""
        return await self._run(_core.history_call(channel, limit, since, order))

    async def readiness(self) -> Readiness:
        """See :meth:`Client.readiness`."""
        return await self._run(_core.readiness_call())

    async def shutdown(self, *, restart: bool = False) -> ShutdownResult:
        """See :meth:`Client.shutdown`."""
        return await self._run(_core.shutdown_call(restart))
