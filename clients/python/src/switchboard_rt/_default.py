"""The process-wide publishers that ``Message.send`` and
``Message.send_async`` use when no ``via=`` is given."""

from __future__ import annotations

import asyncio
import atexit
import threading
import weakref
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from .client import AsyncClient, Client
    from .redis import AsyncRedisPublisher, RedisPublisher

    SyncPublisher: TypeAlias = Client | RedisPublisher
    AsyncPublisher: TypeAlias = AsyncClient | AsyncRedisPublisher

__all__ = ["set_default_async_publisher", "set_default_publisher"]

_lock = threading.Lock()
_sync: SyncPublisher | None = None
_own_sync: Client | None = None
_async: AsyncPublisher | None = None
_async_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncClient] = (
    weakref.WeakKeyDictionary()
)


def set_default_publisher(publisher: SyncPublisher | None) -> None:
    """Makes ``publisher`` (a :class:`~switchboard_rt.Client` or a
    :class:`~switchboard_rt.redis.RedisPublisher`) the one ``Message.send``
    uses. ``None`` goes back to the default: a ``Client()`` configured from
    ``$SWITCHBOARD_URL`` and ``$SWITCHBOARD_API_KEY``, made on first use."""
    global _sync
    with _lock:
        _sync = publisher


def set_default_async_publisher(publisher: AsyncPublisher | None) -> None:
    """Makes ``publisher`` (an :class:`~switchboard_rt.AsyncClient` or an
    :class:`~switchboard_rt.redis.AsyncRedisPublisher`) the one
    ``Message.send_async`` uses, in every event loop (so use it from one loop
    only). ``None`` goes back to the default: one ``AsyncClient()`` per event
    loop, configured from the environment."""
    global _async
    with _lock:
        _async = publisher


def publisher() -> SyncPublisher:
    """The default blocking publisher."""
    global _own_sync
    with _lock:
        if _sync is not None:
            return _sync
        if _own_sync is None:
            from .client import Client

            _own_sync = Client()
            atexit.register(_own_sync.close)
        return _own_sync


def async_publisher() -> AsyncPublisher:
    """The default async publisher for the running event loop."""
    with _lock:
        if _async is not None:
            return _async
        loop = asyncio.get_running_loop()
        client = _async_by_loop.get(loop)
        if client is None:
            from .client import AsyncClient

            client = AsyncClient()
            _async_by_loop[loop] = client
        return client
