"""switchboard_rt: publish to Switchboard, the real-time WebSocket gateway,
from Python.

- :class:`Client` and :class:`AsyncClient`: the gateway's HTTP API (publish,
  disconnect, connections, rooms), with typed results and exceptions,
  retries, connection pooling, and configuration from ``$SWITCHBOARD_URL``
  and ``$SWITCHBOARD_API_KEY``.
- :class:`Event`, :class:`Data`, :class:`Notification`: the protocol's typed
  messages, which can ``send()`` themselves.
- :mod:`switchboard_rt.redis`: the same messages through Redis, for workers
  without HTTP access (the ``redis`` extra); rooms with history
  (:class:`HistoryConfig`) go through the gateway's append script.
- :mod:`switchboard_rt.tokens`: connection JWTs the gateway accepts.
- :mod:`switchboard_rt.proxy`: the backend side of the gateway's proxy
  (signature check, typed connect/refresh/subscribe/rpc calls and answers,
  a :class:`~switchboard_rt.proxy.Proxy` of decorated handlers), mounted by
  :mod:`switchboard_rt.fastapi` (FastAPI, Starlette; the ``fastapi`` extra)
  and :mod:`switchboard_rt.django` (the ``django`` extra).

The distribution is ``switchboard-realtime`` on PyPI; the import name is
``switchboard_rt``.
"""

from ._default import set_default_async_publisher, set_default_publisher
from ._version import __version__
from .client import AsyncClient, Client
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
    RedisPublishError,
    RequestTimeoutError,
    ServerError,
    ServiceUnavailableError,
    SwitchboardError,
    TransportError,
    UnauthorizedError,
    UnsupportedFeatureError,
    UnsupportedMediaTypeError,
)
from .history import HistoryConfig, HistoryRule
from .messages import (
    Data,
    Event,
    Level,
    Message,
    Notification,
    NotificationAction,
    from_envelope,
)
from .results import (
    Connection,
    ConnectionCount,
    ConnectionList,
    DisconnectResult,
    HistoryPage,
    Publication,
    PublishResult,
    Readiness,
    RedisPublishResult,
    RoomInfo,
    RoomList,
    RoomSize,
    ShutdownResult,
)
from .retry import Retry
from .targets import Target
from .tokens import TokenSigner, mint_token

__all__ = [
    "ApiError",
    "AsyncClient",
    "BadRequestError",
    "BrokerUnavailableError",
    "Client",
    "ConnectError",
    "Connection",
    "ConnectionCount",
    "ConnectionList",
    "Data",
    "DisconnectResult",
    "Event",
    "ForbiddenError",
    "HistoryConfig",
    "HistoryPage",
    "HistoryQueryError",
    "HistoryRule",
    "IdempotencyKeyError",
    "Level",
    "Message",
    "NoHistoryError",
    "NotFoundError",
    "Notification",
    "NotificationAction",
    "PayloadTooLargeError",
    "Publication",
    "PublishResult",
    "Readiness",
    "RedisPublishError",
    "RedisPublishResult",
    "RequestTimeoutError",
    "Retry",
    "RoomInfo",
    "RoomList",
    "RoomSize",
    "ServerError",
    "ServiceUnavailableError",
    "ShutdownResult",
    "SwitchboardError",
    "Target",
    "TokenSigner",
    "TransportError",
    "UnauthorizedError",
    "UnsupportedFeatureError",
    "UnsupportedMediaTypeError",
    "__version__",
    "from_envelope",
    "mint_token",
    "set_default_async_publisher",
    "set_default_publisher",
]
