"""What the sync and async HTTP clients share: configuration from the
environment, the API calls (method, path, body, how to read the answer),
error mapping and the retry loop's decisions. No I/O here."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

import httpx

from ._version import __version__
from .errors import (
    ApiError,
    BadRequestError,
    BrokerUnavailableError,
    ConnectError,
    ForbiddenError,
    HistoryQueryError,
    IdempotencyKeyError,
    NoHistoryError,
    NotFoundError,
    PayloadTooLargeError,
    RequestTimeoutError,
    ServerError,
    ServiceUnavailableError,
    SwitchboardError,
    TransportError,
    UnauthorizedError,
    UnsupportedFeatureError,
    UnsupportedMediaTypeError,
)
from .messages import Data, Event, Message, Notification
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
from .targets import Target

T = TypeVar("T")

DEFAULT_URL = "http://127.0.0.1:8080"
"""Where the gateway listens on its defaults."""
URL_ENV = "SWITCHBOARD_URL"
API_KEY_ENV = "SWITCHBOARD_API_KEY"
DEFAULT_TIMEOUT = httpx.Timeout(5.0, connect=2.0)

IdempotencyMode = Literal["auto", "on", "off"]

USER_AGENT = f"switchboard-realtime/{__version__} (python; httpx {httpx.__version__})"


def resolve_url(url: str | None) -> str:
    """The gateway's base URL: ``url``, else ``$SWITCHBOARD_URL``, else
    ``http://127.0.0.1:8080``. ``ws://``/``wss://`` become ``http://``/``https://``
    (so the address the gateway prints on start can be used as is)."""
    value = url if url else os.environ.get(URL_ENV) or DEFAULT_URL
    value = value.strip().rstrip("/")
    if value.startswith("ws://"):
        value = "http://" + value[len("ws://") :]
    elif value.startswith("wss://"):
        value = "https://" + value[len("wss://") :]
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"url: {value!r} must start with http://, https://, ws:// or wss://")
    return value


def resolve_api_key(api_key: str | None) -> str | None:
    """``api_key``, else ``$SWITCHBOARD_API_KEY``; empty means none."""
    if api_key is not None:
        return api_key or None
    return os.environ.get(API_KEY_ENV) or None


def headers(api_key: str | None, extra: Mapping[str, str] | None) -> dict[str, str]:
    """The headers of every request."""
    result = {"Accept": "application/json", "User-Agent": USER_AGENT}
    if api_key:
        result["Authorization"] = f"Bearer {api_key}"
    if extra:
        result.update(extra)
    return result


def segment(value: str | int) -> str:
    """A path segment, percent-encoded (``gw-1/42`` -> ``gw-1%2F42``)."""
    return quote(str(value), safe="")


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API operation: the request, and how to read a successful answer."""

    method: str
    path: str
    read: Callable[[Any, int], T]
    body: dict[str, Any] | None = None
    params: dict[str, str] | None = None
    ok: frozenset[int] = frozenset({200})
    retry: bool = True
    json_answer: bool = True
    refine: Callable[[ApiError], ApiError] | None = None
    """Turns a generic error into this call's own (a history 404 into
    :class:`NoHistoryError`)."""

    def request_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if self.params:
            kwargs["params"] = self.params
        if self.body is not None:
            # httpx encodes it compactly and sets Content-Type: application/json
            # (the gateway will answer 415 to anything else).
            kwargs["json"] = self.body
        return kwargs

    def finish(self, response: httpx.Response, attempts: int) -> T:
        """The result, or the :class:`ApiError` for the answer."""
        if response.status_code not in self.ok:
            error = api_error(response, attempts)
            raise self.refine(error) if self.refine is not None else error
        if not self.json_answer:
            return self.read(response.text, attempts)
        try:
            body = response.json()
        except ValueError as exc:
            raise ApiError(
                response.status_code,
                None,
                f"expected a JSON answer, got {response.text[:200]!r}",
                attempts=attempts,
            ) from exc
        return self.read(body, attempts)


def api_error(response: httpx.Response, attempts: int) -> ApiError:
    """Maps an error answer to its exception (see :mod:`switchboard_rt.errors`)."""
    status = response.status_code
    body: Any = None
    code: str | None = None
    message = response.text[:500]
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        code = str(error.get("code")) if error.get("code") is not None else None
        message = str(error.get("message", ""))
    retry_after = _retry_after(response.headers.get("retry-after"))
    common: dict[str, Any] = {"body": body, "retry_after": retry_after, "attempts": attempts}
    if status == 503 and code == "broker_unavailable":
        local = body.get("local") if isinstance(body, dict) else None
        return BrokerUnavailableError(
            status, code, message, local=int(local) if local is not None else None, **common
        )
    cls: type[ApiError]
    if status == 400:
        cls = BadRequestError
    elif status == 401:
        cls = UnauthorizedError
    elif status == 403:
        cls = ForbiddenError
    elif status == 404:
        cls = NotFoundError
    elif status == 413:
        cls = PayloadTooLargeError
    elif status == 415:
        cls = UnsupportedMediaTypeError
    elif status == 503:
        cls = ServiceUnavailableError
    elif status >= 500:
        cls = ServerError
    else:
        cls = ApiError
    return cls(status, code, message, **common)


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: not something the gateway sends
    return max(0.0, seconds)


def transport_error(exc: httpx.TransportError, attempts: int) -> TransportError:
    """Maps an httpx failure to ours, saying whether the gateway may have
    received the request."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
        return ConnectError(
            f"cannot reach the gateway: {text}", maybe_delivered=False, attempts=attempts
        )
    if isinstance(exc, httpx.PoolTimeout):
        return RequestTimeoutError(
            f"no free connection in the pool: {text}", maybe_delivered=False, attempts=attempts
        )
    if isinstance(exc, httpx.TimeoutException):
        return RequestTimeoutError(
            f"the gateway did not answer in time: {text}", maybe_delivered=True, attempts=attempts
        )
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.ProxyError)):
        return TransportError(
            f"cannot send the request: {text}", maybe_delivered=False, attempts=attempts
        )
    return TransportError(f"the connection failed: {text}", maybe_delivered=True, attempts=attempts)


@dataclass
class Attempts:
    """Counts the attempts of one call and decides whether to retry."""

    policy: Retry
    count: int = 0
    last_error: SwitchboardError | None = field(default=None, repr=False)

    def start(self) -> int:
        self.count += 1
        return self.count

    def retry_delay(self, error: SwitchboardError) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to give up."""
        self.last_error = error
        if self.count >= self.policy.attempts:
            return None
        retry_after: float | None = None
        if isinstance(error, ApiError):
            if error.status not in self.policy.statuses:
                return None
            retry_after = error.retry_after
        elif isinstance(error, ConnectError) or (
            isinstance(error, RequestTimeoutError) and not error.maybe_delivered
        ):
            if not self.policy.on_connect_error:
                return None
        elif isinstance(error, TransportError):
            if not error.maybe_delivered:
                return None  # a bad URL or protocol error: retrying cannot help
            if not self.policy.on_network_error:
                return None
        else:
            return None
        return self.policy.delay(self.count, retry_after)


def tag_attempts(error: SwitchboardError, attempts: int) -> SwitchboardError:
    """Records on the error how many requests were made."""
    if isinstance(error, (ApiError, TransportError)):
        error.attempts = attempts
    return error


# ---------------------------------------------------------------- the calls


def message_body(message: Message | str) -> dict[str, Any]:
    """``message`` or ``text`` of a publish body."""
    if isinstance(message, str):
        return {"text": message}
    if isinstance(message, (Event, Data, Notification)):
        return {"message": message.to_api()}
    if isinstance(message, (bytes, bytearray, memoryview)):
        raise TypeError(
            "the HTTP API publishes text only: send bytes through Redis"
            " (switchboard_rt.redis), or decode them"
        )
    raise TypeError(
        f"cannot publish a {type(message).__name__}: use Event, Data, Notification or str"
    )


def publish_call(
    target: Target,
    message: Message | str,
    *,
    exclude: str | int | None,
    idempotency_key: str | None,
) -> Call[PublishResult]:
    body: dict[str, Any] = {"target": target.to_api(), **message_body(message)}
    if exclude is not None:
        body["except"] = str(exclude)
    if idempotency_key is not None:
        body["idempotency_key"] = idempotency_key

    def read(answer: Any, attempts: int) -> PublishResult:
        return PublishResult.from_json(answer, attempts=attempts, idempotency_key=idempotency_key)

    return Call("POST", "/api/v1/publish", read, body=body, refine=_refine_publish)


def _same(error: ApiError, cls: type[ApiError]) -> ApiError:
    """``error`` as a ``cls``."""
    return cls(
        error.status,
        error.code,
        error.message,
        body=error.body,
        retry_after=error.retry_after,
        attempts=error.attempts,
    )


def _refine_publish(error: ApiError) -> ApiError:
    if isinstance(error, BadRequestError) and error.field == "idempotency_key":
        return _same(error, IdempotencyKeyError)
    return error


_HISTORY_FIELDS = frozenset({"limit", "since", "order"})


def _refine_history(error: ApiError) -> ApiError:
    if isinstance(error, BadRequestError) and error.field in _HISTORY_FIELDS:
        return _same(error, HistoryQueryError)
    if type(error) is NotFoundError and "keeps no history" in error.message:
        return _same(error, NoHistoryError)
    return error


HistoryOrder = Literal["asc", "desc"]


def history_call(
    channel: str, limit: int | None, since: int | None, order: HistoryOrder | None
) -> Call[HistoryPage]:
    params: dict[str, str] = {}
    if limit is not None:
        params["limit"] = str(limit)
    if since is not None:
        params["since"] = str(since)
    if order is not None:
        params["order"] = str(order)
    return Call(
        "GET",
        f"/api/v1/channels/{segment(channel)}/history",
        lambda answer, _: HistoryPage.from_json(answer),
        params=params or None,
        refine=_refine_history,
    )


def disconnect_call(target: Target, code: int, reason: str | None) -> Call[DisconnectResult]:
    body: dict[str, Any] = {"target": target.to_api(), "code": code}
    if reason is not None:
        body["reason"] = reason
    return Call(
        "POST",
        "/api/v1/disconnect",
        lambda answer, attempts: DisconnectResult.from_json(answer, attempts=attempts),
        body=body,
    )


def connections_call(room: str | None, user: str | None, limit: int | None) -> Call[ConnectionList]:
    params: dict[str, str] = {}
    if room is not None:
        params["room"] = room
    if user is not None:
        params["user"] = user
    if limit is not None:
        params["limit"] = str(limit)
    return Call(
        "GET",
        "/api/v1/connections",
        lambda answer, _: ConnectionList.from_json(answer),
        params=params or None,
    )


def connection_count_call() -> Call[ConnectionCount]:
    return Call(
        "GET", "/api/v1/connections/count", lambda answer, _: ConnectionCount.from_json(answer)
    )


def connection_call(connection: str | int) -> Call[Connection]:
    return Call(
        "GET",
        f"/api/v1/connections/{segment(connection)}",
        lambda answer, _: Connection.from_json(answer),
    )


def user_connections_call(user: str) -> Call[ConnectionList]:
    return Call(
        "GET",
        f"/api/v1/users/{segment(user)}/connections",
        lambda answer, _: ConnectionList.from_json(answer),
    )


def rooms_call(limit: int | None) -> Call[RoomList]:
    return Call(
        "GET",
        "/api/v1/rooms",
        lambda answer, _: RoomList.from_json(answer),
        params={"limit": str(limit)} if limit is not None else None,
    )


def room_call(room: str) -> Call[RoomInfo]:
    return Call(
        "GET", f"/api/v1/rooms/{segment(room)}", lambda answer, _: RoomInfo.from_json(answer)
    )


def shutdown_call(restart: bool) -> Call[ShutdownResult]:
    return Call(
        "POST",
        "/api/v1/admin/shutdown",
        lambda answer, _: ShutdownResult.from_json(answer),
        body={"restart": restart},
        ok=frozenset({200, 202}),
        retry=False,
    )


def readiness_call() -> Call[Readiness]:
    return Call(
        "GET", "/readyz", lambda answer, _: Readiness.from_json(answer), ok=frozenset({200, 503})
    )


def openapi_call() -> Call[Any]:
    return Call("GET", "/api/v1/openapi.json", lambda answer, _: answer, retry=False)


def advertises_idempotency(openapi: Any) -> bool:
    """Whether the gateway's OpenAPI document lists ``idempotency_key`` in the
    publish request (the streams work adds it; the gateway refuses unknown
    fields, so the key is only sent when it is listed)."""
    try:
        properties = openapi["components"]["schemas"]["PublishRequest"]["properties"]
    except (KeyError, TypeError):
        return False
    return isinstance(properties, dict) and "idempotency_key" in properties


def new_idempotency_key() -> str:
    """A fresh key: a random UUID."""
    return str(uuid.uuid4())


def choose_key(mode: IdempotencyMode, supported: bool | None, explicit: str | None) -> str | None:
    """The idempotency key to send with a publish, given the mode and what the
    gateway advertised (``supported`` is ``None`` when not known)."""
    if mode == "off":
        if explicit is not None:
            raise UnsupportedFeatureError(
                "idempotency_key given, but the client was created with idempotency='off'"
            )
        return None
    if mode == "on" or supported:
        return explicit if explicit is not None else new_idempotency_key()
    if explicit is not None:
        raise UnsupportedFeatureError(
            "this gateway does not accept idempotency keys yet (its OpenAPI document does"
            " not list idempotency_key for POST /api/v1/publish), so a retry may deliver"
            " twice; publish without idempotency_key, or use idempotency='on' if you know"
            " better"
        )
    return None
