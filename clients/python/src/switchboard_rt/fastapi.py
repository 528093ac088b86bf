"""The gateway's proxy in FastAPI or Starlette (the ``fastapi`` extra:
``pip install 'switchboard-realtime[fastapi]'``).

::

    from fastapi import FastAPI
    from switchboard_rt.fastapi import fastapi_router
    from switchboard_rt.proxy import ConnectRequest, Proxy

    proxy = Proxy()  # $SWITCHBOARD_PROXY_SECRET

    @proxy.connect
    async def connect(call: ConnectRequest) -> str | None:
        return call.cookies.get("user")

    app = FastAPI()
    app.include_router(fastapi_router(proxy))  # POST /switchboard/connect, /rpc, ...

Each proxy gets ``POST <prefix>/<kind>`` (``/switchboard/connect``,
``/switchboard/refresh``, ``/switchboard/subscribe``, ``/switchboard/rpc``,
``/switchboard/disconnect``, ``/switchboard/unsubscribe``), the URLs of
docs/proxy.md's example configuration. A kind without a handler answers
``404`` (a failure for the gateway: configure only the proxies you
handle). The routes are left out of the OpenAPI schema.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

try:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "switchboard_rt.fastapi needs FastAPI or Starlette:"
        " pip install 'switchboard-realtime[fastapi]'"
    ) from exc

from .proxy import Proxy, ProxyKind

if TYPE_CHECKING:
    import fastapi

__all__ = ["fastapi_router", "starlette_routes"]


def _endpoint(proxy: Proxy, kind: ProxyKind) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        answer = await proxy.handle(kind, await request.body(), request.headers)
        return Response(answer.body, status_code=answer.status, media_type=answer.content_type)

    endpoint.__name__ = f"switchboard_{kind.value}"
    return endpoint


def _path(prefix: str, kind: ProxyKind) -> str:
    return f"{prefix.rstrip('/')}/{kind.value}"


def starlette_routes(proxy: Proxy, *, prefix: str = "/switchboard") -> list[Route]:
    """Starlette routes, ``POST <prefix>/<kind>`` for every proxy kind:
    ``Starlette(routes=[*starlette_routes(proxy), ...])`` (Starlette only,
    no FastAPI needed)."""
    return [
        Route(_path(prefix, kind), _endpoint(proxy, kind), methods=["POST"]) for kind in ProxyKind
    ]


def fastapi_router(proxy: Proxy, *, prefix: str = "/switchboard") -> fastapi.APIRouter:
    """A FastAPI ``APIRouter`` with ``POST <prefix>/<kind>`` for every proxy
    kind: ``app.include_router(fastapi_router(proxy))``."""
    try:
        import fastapi
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "fastapi_router needs FastAPI: pip install 'switchboard-realtime[fastapi]'"
            " (starlette_routes needs Starlette alone)"
        ) from exc
    router = fastapi.APIRouter()
    for kind in ProxyKind:
        router.add_api_route(
            _path(prefix, kind),
            _endpoint(proxy, kind),
            methods=["POST"],
            include_in_schema=False,
            response_class=Response,
        )
    return router
