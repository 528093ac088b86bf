"""The gateway's proxy in Django (the ``django`` extra:
``pip install 'switchboard-realtime[django]'``).

::

    # urls.py
    from switchboard_rt.django import proxy_urlpatterns
    from myapp.realtime import proxy  # a switchboard_rt.proxy.Proxy with its handlers

    urlpatterns = [*proxy_urlpatterns(proxy)]  # POST /switchboard/connect, /rpc, ...

Each proxy gets ``POST <prefix><kind>`` (``switchboard/connect``,
``switchboard/refresh``, ``switchboard/subscribe``, ``switchboard/rpc``,
``switchboard/disconnect``, ``switchboard/unsubscribe``), named
``switchboard-<kind>``, exempt from CSRF (the gateway's signature
authenticates the call instead). The views are synchronous: plain handlers
run in the request's thread (the ORM works as in any view); coroutine
handlers run through asgiref's ``async_to_sync``. They work under WSGI and
ASGI alike (the package's tests run them under ``runserver`` and under
uvicorn). A kind without a handler answers
``404`` (a failure for the gateway: configure only the proxies you handle).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

try:
    from asgiref.sync import async_to_sync
    from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
    from django.urls import URLPattern, path
    from django.views.decorators.csrf import csrf_exempt
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "switchboard_rt.django needs Django: pip install 'switchboard-realtime[django]'"
    ) from exc

from .proxy import Proxy, ProxyKind

__all__ = ["proxy_urlpatterns", "proxy_view"]


async def _await(factory: Callable[[], Awaitable[Any]]) -> Any:
    return await factory()


def _run_async(factory: Callable[[], Awaitable[Any]]) -> Any:
    return async_to_sync(_await)(factory)


def proxy_view(proxy: Proxy, kind: ProxyKind | str) -> Callable[[HttpRequest], HttpResponse]:
    """The Django view answering the gateway's ``kind`` calls (``POST``
    only), for mounting it yourself: ``path("rt/rpc", proxy_view(proxy,
    "rpc"))``."""
    kind = ProxyKind(kind)

    def view(request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        answer = proxy.handle_sync(kind, request.body, request.headers, run_async=_run_async)
        return HttpResponse(answer.body, status=answer.status, content_type=answer.content_type)

    view.__name__ = f"switchboard_{kind.value}"
    return csrf_exempt(view)  # type: ignore[no-any-return]


def proxy_urlpatterns(proxy: Proxy, *, prefix: str = "switchboard/") -> list[URLPattern]:
    """URL patterns for every proxy kind, ``<prefix><kind>`` (Django's
    ``path`` syntax: no leading slash): ``urlpatterns = [*proxy_urlpatterns(proxy)]``,
    or ``path("", include(proxy_urlpatterns(proxy)))``."""
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return [
        path(f"{prefix}{kind.value}", proxy_view(proxy, kind), name=f"switchboard-{kind.value}")
        for kind in ProxyKind
    ]
