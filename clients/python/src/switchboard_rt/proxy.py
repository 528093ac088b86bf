"""The backend side of the gateway's proxy (docs/proxy.md).

The gateway asks your backend, with an HTTP ``POST`` of a signed JSON body,
who a connection is (``connect``), whether to extend a session
(``refresh``), whether a connection may subscribe to a channel
(``subscribe``), what an ``ACTION`` answers (``rpc``), and tells it when
connections end (``disconnect``) or unsubscribe (``unsubscribe``). This
module turns those calls into typed requests for your functions, and their
return values (or typed refusals) into the documented answers::

    from switchboard_rt.proxy import ConnectRequest, Proxy, Refuse, RpcError, RpcRequest

    proxy = Proxy()  # the secret from $SWITCHBOARD_PROXY_SECRET

    @proxy.connect
    async def connect(call: ConnectRequest) -> str:
        user = await sessions.user_for(call.cookies.get("session"))
        if user is None:
            raise Refuse("Please sign in", status=401)  # the client: close 1008
        return user  # the connection's user id

    @proxy.rpc("orders.create")
    async def create_order(call: RpcRequest) -> dict[str, int]:
        if call.user is None:
            raise RpcError("sign_in_required", "Sign in to order")  # ERROR, this code
        return {"order_id": await orders.create(call.user, call.data)}  # ACTION_RESULT

It depends on no web framework: :mod:`switchboard_rt.fastapi` mounts a
:class:`Proxy` in FastAPI or Starlette, :mod:`switchboard_rt.django` in
Django, and :meth:`Proxy.handle` / :meth:`Proxy.handle_sync` serve any other
(give them the kind of call, the raw body and the headers).

Every call's ``X-Switchboard-Signature`` is checked first, on the raw bytes,
in constant time (:func:`verify_signature`); a call that does not verify is
answered ``401`` and never reaches a handler (the gateway counts any answer
but ``200`` as a failure of the backend).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import hmac
import inspect
import json
import os
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from http.cookies import CookieError, SimpleCookie
from typing import Any, Generic, TypeVar, overload

from .errors import SwitchboardError

__all__ = [
    "SIGNATURE_HEADER",
    "ClientInfo",
    "ConnectHandler",
    "ConnectRequest",
    "ConnectResult",
    "DisconnectEvent",
    "DisconnectHandler",
    "Proxy",
    "ProxyKind",
    "ProxyRequestError",
    "ProxyResponse",
    "RefreshHandler",
    "RefreshRequest",
    "RefreshResult",
    "Refuse",
    "RpcError",
    "RpcHandler",
    "RpcRequest",
    "RpcResult",
    "SubscribeHandler",
    "SubscribeRequest",
    "SubscribeResult",
    "UnsubscribeEvent",
    "UnsubscribeHandler",
    "sign",
    "verify_signature",
]

SIGNATURE_HEADER = "x-switchboard-signature"
"""The header that carries the body's signature, ``sha256=<hex>``."""

REQUEST_ID_HEADER = "x-request-id"
"""The header that carries the gateway's id of the call (logged on both sides)."""

SECRET_ENV = "SWITCHBOARD_PROXY_SECRET"
"""Where :class:`Proxy` reads the secret when none is given (the variable
docs/proxy.md's ``[proxy] secret_env`` names)."""

_SIGNATURE_PREFIX = "sha256="
_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_.:\-]{0,63}")


# ------------------------------------------------------------------ signature


def _secret_bytes(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def sign(secret: str | bytes, body: bytes) -> str:
    """The ``X-Switchboard-Signature`` the gateway sends with ``body``:
    ``sha256=`` and the hex HMAC-SHA256 of the exact bytes with ``secret``."""
    return _SIGNATURE_PREFIX + hmac.new(_secret_bytes(secret), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str | bytes, body: bytes, signature: str | None) -> bool:
    """Whether ``signature`` (the ``X-Switchboard-Signature`` header, ``None``
    when absent) is the gateway's signature of ``body`` with ``secret``.

    Check the raw bytes you received, before parsing them. The comparison
    takes the same time wherever the first difference is
    (:func:`hmac.compare_digest`). A missing or malformed header is
    ``False``.
    """
    if signature is None:
        return False
    expected = sign(secret, body).encode()
    try:
        given = signature.strip().encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(expected, given)


# ------------------------------------------------------------------ errors


class ProxyRequestError(SwitchboardError):
    """A call whose body is not what docs/proxy.md describes (not JSON, a
    missing or mistyped field). The integrations answer it ``400``, a
    failure for the gateway."""


class Refuse(Exception):  # noqa: N818 - it reads as what the handler does
    """Raised by a handler: the answer is ``{"error": {"message": ...}}``.

    - connect: the connection is refused. With the gateway's default
      ``refuse_with = "close"`` the client sees close **1008** with
      ``message``; with ``"status"``, HTTP **403** (``status=401``: **401**).
    - refresh: the session is not extended; it ends (close **4003**) at its
      ``expires_at``.
    - subscribe: ``SUBSCRIBE_FAILURE`` with code ``forbidden`` and reason
      ``message``.
    - rpc: ``ERROR`` with code ``action_failed`` (raise :class:`RpcError` to
      choose the code).
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        if status not in (None, 401, 403):
            raise ValueError("status must be 401, 403 or None (403)")
        super().__init__(message)
        self.message = message
        self.status = status

    def to_json(self) -> dict[str, Any]:
        """The answer's body."""
        error: dict[str, Any] = {"message": self.message}
        if self.status is not None:
            error["status"] = self.status
        return {"error": error}


class RpcError(Refuse):
    """Raised by an rpc handler: the client gets ``ERROR`` with this
    ``code`` and ``message`` (and ``"temporary": true`` when ``temporary``:
    clients retry those with backoff), correlated with its ``ACTION``.

    ``code`` is what the gateway accepts: 1 to 64 characters of ``A-Z a-z
    0-9 _ . : -``, starting with a letter (another code would reach the
    client as ``action_failed``, so it raises :class:`ValueError` here).
    """

    def __init__(self, code: str, message: str, *, temporary: bool = False) -> None:
        if not _CODE.fullmatch(code):
            raise ValueError(
                f"invalid rpc error code {code!r}: 1-64 characters of A-Z a-z 0-9 _ . : -,"
                " starting with a letter"
            )
        super().__init__(message)
        self.code = code
        self.temporary = temporary

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.temporary:
            error["temporary"] = True
        return {"error": error}


# ------------------------------------------------------------------ requests


def _field(body: Mapping[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    if name not in body:
        raise ProxyRequestError(f"the call has no {name!r}")
    value = body[name]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ProxyRequestError(f"{name!r} has the wrong type: {value!r}")
    return value


def _optional(body: Mapping[str, Any], name: str, kind: type) -> Any:
    value = body.get(name)
    if value is not None and not isinstance(value, kind):
        raise ProxyRequestError(f"{name!r} is not a {kind.__name__} or null: {value!r}")
    return value


def _strings(body: Mapping[str, Any], name: str) -> dict[str, str]:
    value = body.get(name) or {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ProxyRequestError(f"{name!r} is not an object of strings: {value!r}")
    return dict(value)


def _number(body: Mapping[str, Any], name: str) -> float:
    value = _field(body, name, (int, float))
    return float(value)


@dataclass(frozen=True)
class ClientInfo:
    """The client's side of a connection."""

    ip: str
    """The client address (after the gateway's ``trusted_proxies``)."""

    @classmethod
    def from_json(cls, value: Any) -> ClientInfo:
        if not isinstance(value, dict):
            raise ProxyRequestError(f"'client' is not an object: {value!r}")
        return cls(ip=str(_field(value, "ip", str)))


@dataclass(frozen=True, kw_only=True)
class _Call:
    request_id: str | None = None
    """The gateway's ``X-Request-Id`` of this call (log it; de-duplicate on it
    where a replayed call matters)."""


@dataclass(frozen=True, kw_only=True)
class _AboutConnection(_Call):
    """The fields of every call about an open connection."""

    connection: str
    """Its cluster address (``gw-1/42``): what the HTTP API's ``connection=``
    target and ``DELETE /api/v1/connections/{id}`` take."""
    user: str | None
    """The user id; ``None`` for an anonymous connection."""
    meta: Any
    """The ``meta`` the connect proxy answered (``None``: none)."""
    client: ClientInfo
    endpoint: str
    """The endpoint's path pattern (``/ws``)."""

    @staticmethod
    def _connection_fields(body: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "connection": _field(body, "connection", str),
            "user": _optional(body, "user", str),
            "meta": body.get("meta"),
            "client": ClientInfo.from_json(body.get("client")),
            "endpoint": _field(body, "endpoint", str),
        }


@dataclass(frozen=True, kw_only=True)
class ConnectRequest(_Call):
    """The ``connect`` call: a WebSocket handshake (or an ``AUTHENTICATE``
    message) to decide on."""

    client: ClientInfo
    endpoint: str
    """The endpoint's path pattern (``/ws/{org}``)."""
    path: str
    """The handshake's path (``/ws/acme``)."""
    path_params: dict[str, str] = field(default_factory=dict)
    """The endpoint pattern's parameters (``{"org": "acme"}``)."""
    headers: dict[str, str] = field(default_factory=dict)
    """The handshake's ``Cookie`` and ``Authorization``, and the headers in
    ``connect.forward_headers``; names in lower case."""
    token: str | None = None
    """The token the endpoint's ``security.token_sources`` found, or the one
    an ``AUTHENTICATE`` message carries; ``None`` when none."""

    @property
    def cookies(self) -> dict[str, str]:
        """The ``Cookie`` header's cookies, by name (empty when there is none
        or it does not parse)."""
        try:
            jar = SimpleCookie(self.headers.get("cookie", ""))
        except CookieError:
            return {}
        return {name: morsel.value for name, morsel in jar.items()}

    @classmethod
    def from_json(cls, body: Mapping[str, Any], request_id: str | None = None) -> ConnectRequest:
        """Reads the call's JSON body (unknown fields are ignored)."""
        return cls(
            request_id=request_id,
            client=ClientInfo.from_json(body.get("client")),
            endpoint=_field(body, "endpoint", str),
            path=_field(body, "path", str),
            path_params=_strings(body, "path_params"),
            headers={k.lower(): v for k, v in _strings(body, "headers").items()},
            token=_optional(body, "token", str),
        )


@dataclass(frozen=True, kw_only=True)
class RefreshRequest(_AboutConnection):
    """The ``refresh`` call: a session ends at ``expires_at`` unless the
    backend extends it (asked ``refresh.before``, 60 s, ahead)."""

    expires_at: float
    """When the session ends now, seconds since the Unix epoch."""

    @classmethod
    def from_json(cls, body: Mapping[str, Any], request_id: str | None = None) -> RefreshRequest:
        """Reads the call's JSON body (unknown fields are ignored)."""
        return cls(
            request_id=request_id,
            expires_at=_number(body, "expires_at"),
            **cls._connection_fields(body),
        )


@dataclass(frozen=True, kw_only=True)
class SubscribeRequest(_AboutConnection):
    """The ``subscribe`` call: a ``SUBSCRIBE`` of a channel matching
    ``subscribe.channels``."""

    channel: str

    @classmethod
    def from_json(cls, body: Mapping[str, Any], request_id: str | None = None) -> SubscribeRequest:
        """Reads the call's JSON body (unknown fields are ignored)."""
        return cls(
            request_id=request_id,
            channel=_field(body, "channel", str),
            **cls._connection_fields(body),
        )


@dataclass(frozen=True, kw_only=True)
class RpcRequest(_AboutConnection):
    """The ``rpc`` call: an ``ACTION`` whose name matches ``rpc.actions``."""

    action: str
    """The action's name (``orders.create``)."""
    data: Any = None
    """The action's ``data`` as the client sent it (``None`` if absent)."""

    @classmethod
    def from_json(cls, body: Mapping[str, Any], request_id: str | None = None) -> RpcRequest:
        """Reads the call's JSON body (unknown fields are ignored)."""
        return cls(
            request_id=request_id,
            action=_field(body, "action", str),
            data=body.get("data"),
            **cls._connection_fields(body),
        )


@dataclass(frozen=True, kw_only=True)
class DisconnectEvent(_AboutConnection):
    """One ``disconnect`` notification: a connection ended (for any reason).
    May arrive twice (a batch whose answer was lost is sent again):
    ``(connection, at)`` identifies it."""

    code: int
    """The close code (1000 normal, 1001 shutdown, 1006 dropped, 4003
    expired, ...)."""
    reason: str
    duration: float
    """Seconds since the connection was accepted."""
    channels: tuple[str, ...] = ()
    """What it was subscribed to when it ended (no ``unsubscribe`` is sent for
    these)."""
    at: float
    """When it ended, seconds since the Unix epoch."""

    @classmethod
    def from_json(cls, body: Mapping[str, Any], request_id: str | None = None) -> DisconnectEvent:
        """Reads one of the batch's ``events`` (unknown fields are ignored)."""
        channels = body.get("channels") or []
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
            raise ProxyRequestError(f"'channels' is not a list of strings: {channels!r}")
        return cls(
            request_id=request_id,
            code=int(_field(body, "code", int)),
            reason=str(_field(body, "reason", str)),
            duration=_number(body, "duration"),
            channels=tuple(channels),
            at=_number(body, "at"),
            **cls._connection_fields(body),
        )


@dataclass(frozen=True, kw_only=True)
class UnsubscribeEvent(_AboutConnection):
    """One ``unsubscribe`` notification: a client's ``UNSUBSCRIBE`` removed a
    channel it had. May arrive twice, like :class:`DisconnectEvent`."""

    channel: str
    at: float
    """When, seconds since the Unix epoch."""

    @classmethod
    def from_json(cls, body: Mapping[str, Any], request_id: str | None = None) -> UnsubscribeEvent:
        """Reads one of the batch's ``events`` (unknown fields are ignored)."""
        return cls(
            request_id=request_id,
            channel=_field(body, "channel", str),
            at=_number(body, "at"),
            **cls._connection_fields(body),
        )


# ------------------------------------------------------------------ results


def _timestamp(value: float | datetime) -> float | int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("expires_at: give an aware datetime (with a tzinfo)")
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expires_at is a number of seconds or a datetime: {value!r}")
    return value


@dataclass(frozen=True)
class ConnectResult:
    """Allows a connection (a connect handler may also just return the user
    id as a ``str``, or ``None`` for an anonymous connection)."""

    user: str | None
    """The user id; ``None`` or ``""``: the connection is anonymous (the
    endpoint's ``require_auth`` and guards apply as to any anonymous
    client)."""
    expires_at: float | datetime | None = None
    """When the session ends (close 4003) unless refreshed: seconds since the
    Unix epoch, or an aware ``datetime``. Already past: the gateway refuses
    the connection as ``session expired``."""
    permissions: Sequence[str] = ()
    """For guards and channel rules (``permission:<name>``)."""
    admin: bool = False
    channels: Sequence[str] = ()
    """Channels the connection is subscribed to at once (without channel
    rules); an invalid name makes the answer invalid (a failure)."""
    meta: Any = None
    """Any JSON, kept with the connection and sent back as ``meta`` with every
    later call about it (``None``: none)."""

    def to_json(self) -> dict[str, Any]:
        """The answer's body (defaults left out)."""
        result: dict[str, Any] = {"user": self.user or None}
        if self.expires_at is not None:
            result["expires_at"] = _timestamp(self.expires_at)
        if self.permissions:
            if isinstance(self.permissions, str):
                raise TypeError("permissions is a sequence of names, not a str")
            result["permissions"] = list(self.permissions)
        if self.admin:
            result["admin"] = True
        if self.channels:
            if isinstance(self.channels, str):
                raise TypeError("channels is a sequence of names, not a str")
            result["channels"] = list(self.channels)
        if self.meta is not None:
            result["meta"] = _jsonable(self.meta)
        return {"result": result}


@dataclass(frozen=True)
class RefreshResult:
    """A refresh handler's answer (it may also return the new ``expires_at``,
    a number or an aware ``datetime``, or ``None`` not to extend)."""

    expires_at: float | datetime | None = None
    """The session's new end, later than the current one (an earlier one is
    ignored by the gateway, and the session expires)."""
    expired: bool = False
    """``True``: no extension; the session ends at its current
    ``expires_at``."""
    meta: Any = None
    """Replaces the connection's ``meta`` (``None``: keeps it)."""

    def to_json(self) -> dict[str, Any]:
        """The answer's body."""
        if self.expired or self.expires_at is None:
            return {"result": {"expired": True}}
        result: dict[str, Any] = {"expires_at": _timestamp(self.expires_at)}
        if self.meta is not None:
            result["meta"] = _jsonable(self.meta)
        return {"result": result}


@dataclass(frozen=True)
class SubscribeResult:
    """Allows a subscription, with ``data`` for the client's
    ``SUBSCRIBE_SUCCESS`` (a subscribe handler that returns ``None`` allows it
    without data)."""

    data: Any = None

    def to_json(self) -> dict[str, Any]:
        """The answer's body."""
        return {"result": {} if self.data is None else {"data": _jsonable(self.data)}}


@dataclass(frozen=True)
class RpcResult:
    """An rpc handler's result, the ``data`` of the client's
    ``ACTION_RESULT``. Returning the value itself does the same; this says
    so explicitly (and is how to answer with a value that is itself an
    ``RpcResult``-looking object)."""

    data: Any = None

    def to_json(self) -> dict[str, Any]:
        """The answer's body."""
        return {"result": _jsonable(self.data)}


def _jsonable(value: Any) -> Any:
    """Dataclass instances become their fields; pydantic models their
    ``model_dump(mode="json")``; anything else is left to ``json``."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    return value


# ------------------------------------------------------------------ registry


class ProxyKind(str, Enum):
    """The gateway's proxies; each is a ``POST`` to its own URL."""

    CONNECT = "connect"
    REFRESH = "refresh"
    SUBSCRIBE = "subscribe"
    RPC = "rpc"
    DISCONNECT = "disconnect"
    UNSUBSCRIBE = "unsubscribe"


@dataclass(frozen=True)
class ProxyResponse:
    """What to answer the gateway: a status and a JSON body."""

    status: int
    body: bytes
    content_type: str = "application/json"

    @classmethod
    def json(cls, value: Any, status: int = 200) -> ProxyResponse:
        return cls(status, json.dumps(value, separators=(",", ":")).encode())


ConnectReturn = str | ConnectResult | None
RefreshReturn = float | datetime | RefreshResult | None

ConnectHandler = Callable[[ConnectRequest], ConnectReturn | Awaitable[ConnectReturn]]
"""``(call) -> user id | ConnectResult | None`` (``None``: anonymous), plain or async."""
RefreshHandler = Callable[[RefreshRequest], RefreshReturn | Awaitable[RefreshReturn]]
"""``(call) -> new expires_at | RefreshResult | None`` (``None``: no extension)."""
SubscribeHandler = Callable[
    [SubscribeRequest], SubscribeResult | Awaitable[SubscribeResult | None] | None
]
"""``(call) -> SubscribeResult | None`` (``None``: allowed, no data)."""
RpcHandler = Callable[[RpcRequest], Any]
"""``(call) -> any JSON value | RpcResult``, plain or async."""
DisconnectHandler = Callable[[DisconnectEvent], Awaitable[None] | None]
"""``(event) -> None``, plain or async."""
UnsubscribeHandler = Callable[[UnsubscribeEvent], Awaitable[None] | None]
"""``(event) -> None``, plain or async."""

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=ConnectHandler)
RF = TypeVar("RF", bound=RefreshHandler)
S = TypeVar("S", bound=SubscribeHandler)
RP = TypeVar("RP", bound=RpcHandler)
D = TypeVar("D", bound=DisconnectHandler)
U = TypeVar("U", bound=UnsubscribeHandler)


class _Routes(Generic[F]):
    """Handlers by exact name, then by pattern (``*``: any characters, the
    gateway's pattern syntax), in the order they were registered."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._exact: dict[str, F] = {}
        self._patterns: list[tuple[str, re.Pattern[str], F]] = []

    def add(self, name: str, handler: F) -> None:
        if not name:
            raise ValueError(f"an empty {self._what} name")
        if "*" in name:
            if any(p == name for p, _, _ in self._patterns):
                raise ValueError(f"a handler for {self._what} {name!r} is already registered")
            regex = re.compile(".*".join(re.escape(part) for part in name.split("*")), re.S)
            self._patterns.append((name, regex, handler))
        else:
            if name in self._exact:
                raise ValueError(f"a handler for {self._what} {name!r} is already registered")
            self._exact[name] = handler

    def find(self, name: str) -> F | None:
        handler = self._exact.get(name)
        if handler is not None:
            return handler
        for _, regex, pattern_handler in self._patterns:
            if regex.fullmatch(name):
                return pattern_handler
        return None

    def __bool__(self) -> bool:
        return bool(self._exact or self._patterns)

    def __iter__(self) -> Iterator[str]:
        yield from self._exact
        yield from (p for p, _, _ in self._patterns)


class Proxy:
    """A registry of handlers for the gateway's proxy calls, independent of
    any web framework.

    ``secret`` is the gateway's ``proxy.secret`` (default: the environment
    variable ``SWITCHBOARD_PROXY_SECRET``); every call's signature is checked
    with it. Without a secret, construction fails, unless
    ``verify_signature=False`` says the gateway signs nothing (then keep the
    backend on a private network: anyone who reaches it can call it).

    Handlers take one typed request and may be plain functions or
    coroutines. Plain functions run in a worker thread under
    :meth:`handle` (as FastAPI runs plain endpoints) and directly under
    :meth:`handle_sync` (Django's views).
    """

    def __init__(
        self,
        secret: str | bytes | None = None,
        *,
        verify_signature: bool = True,
    ) -> None:
        if secret is None:
            secret = os.environ.get(SECRET_ENV) or None
        if verify_signature and not secret:
            raise ValueError(
                f"no proxy secret: pass Proxy(secret=...) or set ${SECRET_ENV} (the gateway's"
                " proxy.secret); Proxy(verify_signature=False) if the gateway has none"
            )
        self._secret = _secret_bytes(secret) if secret and verify_signature else None
        self._connect: ConnectHandler | None = None
        self._refresh: RefreshHandler | None = None
        self._subscribe: _Routes[SubscribeHandler] = _Routes("channel")
        self._rpc: _Routes[RpcHandler] = _Routes("action")
        self._disconnect: list[DisconnectHandler] = []
        self._unsubscribe: list[UnsubscribeHandler] = []

    def __repr__(self) -> str:
        handlers = [k.value for k in ProxyKind if self.handles(k)]
        return f"Proxy(verify_signature={self._secret is not None}, handlers={handlers})"

    # -------------------------------------------------------------- decorators

    def connect(self, handler: C) -> C:
        """Registers the connect handler: ``(ConnectRequest) -> str |
        ConnectResult | None``. Return the user id (or a
        :class:`ConnectResult`), ``None`` for an anonymous connection, or
        raise :class:`Refuse`."""
        if self._connect is not None:
            raise ValueError("a connect handler is already registered")
        self._connect = handler
        return handler

    def refresh(self, handler: RF) -> RF:
        """Registers the refresh handler: ``(RefreshRequest) -> float |
        datetime | RefreshResult | None``. Return the session's new end,
        ``None`` (or raise :class:`Refuse`) not to extend it."""
        if self._refresh is not None:
            raise ValueError("a refresh handler is already registered")
        self._refresh = handler
        return handler

    @overload
    def subscribe(self, channel: S, /) -> S: ...

    @overload
    def subscribe(self, channel: str = "*", /) -> Callable[[S], S]: ...

    def subscribe(self, channel: str | S = "*", /) -> S | Callable[[S], S]:
        """Registers a subscribe handler: ``(SubscribeRequest) ->
        SubscribeResult | None``. Return ``None`` (or a
        :class:`SubscribeResult` with ``data``) to allow, raise
        :class:`Refuse` to refuse.

        ``@proxy.subscribe`` takes every channel; ``@proxy.subscribe("team:*")``
        the channels matching a pattern (``*``: any characters), and an exact
        name wins over a pattern. A channel no handler takes is refused.
        """
        if callable(channel):
            self._subscribe.add("*", channel)
            return channel
        name = channel

        def register(handler: S) -> S:
            self._subscribe.add(name, handler)
            return handler

        return register

    def rpc(self, action: str = "*", /) -> Callable[[RP], RP]:
        """Registers an rpc handler for ``action``: ``(RpcRequest) -> any JSON
        value | RpcResult``, the ``data`` of the client's ``ACTION_RESULT``.
        Raise :class:`RpcError` for an ``ERROR`` with your code.

        ``action`` is an exact name (``"orders.create"``) or a pattern
        (``"orders.*"``; ``"*"``, the default, takes any action). An exact
        name wins; then patterns, in the order they were registered. An
        action no handler takes answers ``ERROR`` ``unknown_action``.
        """

        def register(handler: RP) -> RP:
            self._rpc.add(action, handler)
            return handler

        return register

    def disconnect(self, handler: D) -> D:
        """Registers a disconnect handler: ``(DisconnectEvent) -> None``,
        called once per event of a batch, in order. If it raises, the batch
        is answered as a failure and the gateway sends it again (events
        before the one that failed come twice: de-duplicate on
        ``(connection, at)``)."""
        self._disconnect.append(handler)
        return handler

    def unsubscribe(self, handler: U) -> U:
        """Registers an unsubscribe handler: ``(UnsubscribeEvent) -> None``,
        called once per event, like :meth:`disconnect`."""
        self._unsubscribe.append(handler)
        return handler

    def handles(self, kind: ProxyKind) -> bool:
        """Whether a handler for ``kind`` is registered."""
        return {
            ProxyKind.CONNECT: self._connect is not None,
            ProxyKind.REFRESH: self._refresh is not None,
            ProxyKind.SUBSCRIBE: bool(self._subscribe),
            ProxyKind.RPC: bool(self._rpc),
            ProxyKind.DISCONNECT: bool(self._disconnect),
            ProxyKind.UNSUBSCRIBE: bool(self._unsubscribe),
        }[kind]

    # -------------------------------------------------------------- serving

    async def handle(
        self, kind: ProxyKind | str, body: bytes, headers: Mapping[str, str]
    ) -> ProxyResponse:
        """Answers one call (asyncio): checks the signature on ``body``,
        parses it, runs the handler (a plain function in a worker thread) and
        returns the answer. ``headers`` must look names up without regard to
        case (Starlette's, Django's and httpx's do), or have them in lower
        case.

        Answers ``401`` to a bad signature, ``400`` to a body that is not a
        documented call, ``404`` when no handler for ``kind`` is registered;
        a handler's exception other than :class:`Refuse` propagates (your
        framework answers ``500``: a failure for the gateway).
        """
        prepared = self._prepare(kind, body, headers)
        if isinstance(prepared, ProxyResponse):
            return prepared
        return await prepared.run_async()

    def handle_sync(
        self,
        kind: ProxyKind | str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        run_async: Callable[[Callable[[], Awaitable[Any]]], Any] | None = None,
    ) -> ProxyResponse:
        """:meth:`handle` for synchronous servers (WSGI): plain handlers run
        in the calling thread; coroutine handlers with ``run_async`` (default
        :func:`asyncio.run`; the Django integration passes asgiref's
        ``async_to_sync``)."""
        prepared = self._prepare(kind, body, headers)
        if isinstance(prepared, ProxyResponse):
            return prepared
        return prepared.run_sync(run_async or _run_coroutine)

    def _prepare(
        self, kind: ProxyKind | str, body: bytes, headers: Mapping[str, str]
    ) -> _Prepared | ProxyResponse:
        try:
            kind = ProxyKind(kind)
        except ValueError:
            return ProxyResponse.json({"detail": f"no proxy {kind!r}"}, 404)
        if self._secret is not None and not verify_signature(
            self._secret, body, headers.get(SIGNATURE_HEADER)
        ):
            return ProxyResponse.json({"detail": "bad signature"}, 401)
        if not self.handles(kind):
            return ProxyResponse.json({"detail": f"no {kind.value} handler is registered"}, 404)
        try:
            value = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return ProxyResponse.json({"detail": "the body is not JSON"}, 400)
        if not isinstance(value, dict):
            return ProxyResponse.json({"detail": "the body is not a JSON object"}, 400)
        try:
            return _Prepared.build(self, kind, value, headers.get(REQUEST_ID_HEADER))
        except ProxyRequestError as exc:
            return ProxyResponse.json({"detail": str(exc)}, 400)


def _run_coroutine(factory: Callable[[], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        return await factory()

    return asyncio.run(main())


_Step = tuple[Callable[[Any], Any], Any]


class _Prepared:
    """A parsed call: the handler calls to make and how to turn their
    results into the answer."""

    def __init__(self, steps: list[_Step], answer: Callable[[list[Any]], dict[str, Any]]) -> None:
        self._steps = steps
        self._answer = answer

    @staticmethod
    def build(
        proxy: Proxy, kind: ProxyKind, body: dict[str, Any], request_id: str | None
    ) -> _Prepared | ProxyResponse:
        if kind is ProxyKind.CONNECT:
            assert proxy._connect is not None
            connect = ConnectRequest.from_json(body, request_id)
            return _Prepared([(proxy._connect, connect)], lambda r: _connect_answer(r[0]))
        if kind is ProxyKind.REFRESH:
            assert proxy._refresh is not None
            refresh = RefreshRequest.from_json(body, request_id)
            return _Prepared([(proxy._refresh, refresh)], lambda r: _refresh_answer(r[0]))
        if kind is ProxyKind.SUBSCRIBE:
            subscribe = SubscribeRequest.from_json(body, request_id)
            handler = proxy._subscribe.find(subscribe.channel)
            if handler is None:
                refusal = Refuse(f"no handler for channel {subscribe.channel}")
                return ProxyResponse.json(refusal.to_json())
            return _Prepared([(handler, subscribe)], lambda r: _subscribe_answer(r[0]))
        if kind is ProxyKind.RPC:
            rpc = RpcRequest.from_json(body, request_id)
            rpc_handler = proxy._rpc.find(rpc.action)
            if rpc_handler is None:
                error = RpcError("unknown_action", f"Unknown action {rpc.action}")
                return ProxyResponse.json(error.to_json())
            return _Prepared([(rpc_handler, rpc)], lambda r: _rpc_answer(r[0]))
        events = body.get("events")
        if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
            raise ProxyRequestError("'events' is not a list of objects")
        steps: list[_Step] = []
        if kind is ProxyKind.DISCONNECT:
            for event in events:
                parsed: DisconnectEvent | UnsubscribeEvent = DisconnectEvent.from_json(
                    event, request_id
                )
                steps.extend((h, parsed) for h in proxy._disconnect)
        else:
            for event in events:
                parsed = UnsubscribeEvent.from_json(event, request_id)
                steps.extend((h, parsed) for h in proxy._unsubscribe)
        return _Prepared(steps, lambda _: {})

    async def run_async(self) -> ProxyResponse:
        results: list[Any] = []
        try:
            for handler, argument in self._steps:
                if _is_async(handler):
                    results.append(await handler(argument))
                else:
                    result = await asyncio.to_thread(handler, argument)
                    if inspect.isawaitable(result):
                        result = await result
                    results.append(result)
        except Refuse as refusal:
            return ProxyResponse.json(refusal.to_json())
        return ProxyResponse.json(self._answer(results))

    def run_sync(self, run_async: Callable[[Callable[[], Awaitable[Any]]], Any]) -> ProxyResponse:
        results: list[Any] = []
        try:
            for handler, argument in self._steps:
                if _is_async(handler):
                    results.append(run_async(functools.partial(handler, argument)))
                else:
                    result = handler(argument)
                    if inspect.isawaitable(result):
                        result = run_async(functools.partial(_identity, result))
                    results.append(result)
        except Refuse as refusal:
            return ProxyResponse.json(refusal.to_json())
        return ProxyResponse.json(self._answer(results))


def _identity(value: T) -> T:
    return value


def _is_async(handler: Callable[..., Any]) -> bool:
    while isinstance(handler, functools.partial):
        handler = handler.func
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004 - async callable objects
    )


def _connect_answer(value: Any) -> dict[str, Any]:
    if value is None:
        return ConnectResult(None).to_json()
    if isinstance(value, str):
        return ConnectResult(value).to_json()
    if isinstance(value, ConnectResult):
        return value.to_json()
    raise TypeError(
        "a connect handler returns a user id (str), a ConnectResult or None (anonymous),"
        f" or raises Refuse; it returned {value!r}"
    )


def _refresh_answer(value: Any) -> dict[str, Any]:
    if value is None:
        return RefreshResult(expired=True).to_json()
    if isinstance(value, RefreshResult):
        return value.to_json()
    if isinstance(value, (int, float, datetime)) and not isinstance(value, bool):
        return RefreshResult(value).to_json()
    raise TypeError(
        "a refresh handler returns the new expires_at (seconds or an aware datetime),"
        f" a RefreshResult or None (no extension), or raises Refuse; it returned {value!r}"
    )


def _subscribe_answer(value: Any) -> dict[str, Any]:
    if value is None:
        return SubscribeResult().to_json()
    if isinstance(value, SubscribeResult):
        return value.to_json()
    raise TypeError(
        "a subscribe handler returns None or a SubscribeResult (allowed), or raises Refuse;"
        f" it returned {value!r}"
    )


def _rpc_answer(value: Any) -> dict[str, Any]:
    if isinstance(value, RpcResult):
        return value.to_json()
    return RpcResult(value).to_json()
