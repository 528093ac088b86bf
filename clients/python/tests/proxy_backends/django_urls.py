"""The handlers in Django, at ``switchboard/<kind>``, and ``GET /seen``."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from switchboard_rt.django import proxy_urlpatterns

from .handlers import SEEN, proxy


def seen(request: HttpRequest) -> HttpResponse:
    return JsonResponse(SEEN)


urlpatterns = [*proxy_urlpatterns(proxy), path("seen", seen)]
