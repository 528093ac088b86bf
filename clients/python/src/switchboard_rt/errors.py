"""Exceptions raised by the package.

Every exception derives from :class:`SwitchboardError`. Answers from the
gateway's HTTP API that are not 2xx raise an :class:`ApiError` subclass chosen
by status and error code (docs/operations.md, "The HTTP API"); failures to
reach the gateway raise a :class:`TransportError` subclass.

===========  =======================  ====================================
status       gateway code             exception
===========  =======================  ====================================
400          ``bad_request``          :class:`BadRequestError`
                                      (:class:`IdempotencyKeyError`,
                                      :class:`HistoryQueryError`)
401          ``unauthorized``         :class:`UnauthorizedError`
403          ``forbidden``            :class:`ForbiddenError`
404          ``not_found``            :class:`NotFoundError`
                                      (:class:`NoHistoryError`)
413          ``payload_too_large``    :class:`PayloadTooLargeError`
415          (any)                    :class:`UnsupportedMediaTypeError`
503          ``broker_unavailable``   :class:`BrokerUnavailableError`
503          anything else            :class:`ServiceUnavailableError`
other 5xx    (any)                    :class:`ServerError`
other        (any)                    :class:`ApiError`
===========  =======================  ====================================
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "ApiError",
    "BadRequestError",
    "BrokerUnavailableError",
    "ConnectError",
    "ForbiddenError",
    "HistoryQueryError",
    "IdempotencyKeyError",
    "NoHistoryError",
    "NotFoundError",
    "PayloadTooLargeError",
    "RedisPublishError",
    "RequestTimeoutError",
    "ServerError",
    "ServiceUnavailableError",
    "SwitchboardError",
    "TransportError",
    "UnauthorizedError",
    "UnsupportedFeatureError",
    "UnsupportedMediaTypeError",
]


class SwitchboardError(Exception):
    """Base class of every error this package raises."""


class UnsupportedFeatureError(SwitchboardError):
    """The gateway does not support what was asked for (such as an
    idempotency key on a gateway that does not advertise them)."""


class ApiError(SwitchboardError):
    """The gateway answered with an error status.

    Attributes:
        status: the HTTP status.
        code: the gateway's error code (``bad_request``, ``unauthorized``,
            ...), or ``None`` when the body was not the gateway's JSON error
            (a proxy's page, for example).
        message: the gateway's message, or the start of the body.
        body: the decoded JSON body, or ``None``.
        retry_after: the ``Retry-After`` header in seconds, when present.
        attempts: how many requests were made before giving up.
    """

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        *,
        body: Any = None,
        retry_after: float | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(f"{status} {code or 'error'}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.body = body
        self.retry_after = retry_after
        self.attempts = attempts


_FIELD = re.compile(
    r"^(?:Failed to deserialize [a-z ]+: )?([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*): "
)
_UNKNOWN_FIELD = re.compile(r"unknown field `([^`]+)`")


def field_of(message: str) -> str | None:
    """The field a gateway 400 names: ``target.room`` for ``"target.room:
    ..."``, ``idempotency_key`` for ``"unknown field `idempotency_key`, ..."``."""
    named = _FIELD.match(message)
    if named:
        return named.group(1)
    unknown = _UNKNOWN_FIELD.search(message)
    return unknown.group(1) if unknown else None


class BadRequestError(ApiError):
    """400 ``bad_request``: bad JSON, an unknown field, a missing or ambiguous
    target, an invalid room, user or close code, an invalid idempotency key or
    history query. The message names the field (:attr:`field`)."""

    @property
    def field(self) -> str | None:
        """The field the gateway named (``target.room``, ``limit``,
        ``idempotency_key``), or ``None``."""
        return field_of(self.message)


class IdempotencyKeyError(BadRequestError):
    """400: the ``idempotency_key`` is empty, longer than 128 bytes, or not
    printable ASCII without spaces (or, from a gateway that predates streams,
    an unknown field). Nothing was published."""


class HistoryQueryError(BadRequestError):
    """400 answering a history read: ``limit`` outside 1 to 1000, or a
    ``since`` or ``order`` the gateway cannot read (:attr:`field` names it)."""


class PayloadTooLargeError(BadRequestError):
    """413 ``payload_too_large``: the request body is over the gateway's
    limit (2 MiB)."""


class UnauthorizedError(ApiError):
    """401 ``unauthorized``: a missing or unknown API key."""


class ForbiddenError(ApiError):
    """403 ``forbidden``: for example the admin endpoint on a gateway without
    a configured key."""


class NotFoundError(ApiError):
    """404 ``not_found``: no such route, or no such connection on this instance."""


class NoHistoryError(NotFoundError):
    """404 answering a history read: the channel keeps no history (no
    ``[[history.channels]]`` rule of the gateway matches it)."""


class UnsupportedMediaTypeError(ApiError):
    """415: the gateway refused the request's content type. This client always
    sends ``application/json``; seeing this means something between the client
    and the gateway rewrote the request."""


class ServerError(ApiError):
    """A 5xx answer other than the ones below."""


class ServiceUnavailableError(ServerError):
    """503: the gateway (or a proxy in front of it) cannot serve the request now."""


class BrokerUnavailableError(ServiceUnavailableError):
    """503 ``broker_unavailable``: the broker (Redis) failed.

    For a publish or disconnect, the connections on the instance that answered
    were reached anyway (:attr:`local` of them); other instances were not.

    Attributes:
        local: connections on the answering instance that got the message,
            or ``None`` when the gateway did not say (counts, room info).
        forwarded: always ``False`` when present.
    """

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        *,
        body: Any = None,
        retry_after: float | None = None,
        attempts: int = 1,
        local: int | None = None,
    ) -> None:
        super().__init__(
            status, code, message, body=body, retry_after=retry_after, attempts=attempts
        )
        self.local = local
        self.forwarded = False


class TransportError(SwitchboardError):
    """The request did not get an answer.

    Attributes:
        maybe_delivered: ``False`` when the request surely never reached the
            gateway (the connection could not be opened), ``True`` when it may
            have (a timeout or a connection dropped while waiting for the
            answer): a publish may then have been delivered.
        attempts: how many requests were made before giving up.
    """

    def __init__(self, message: str, *, maybe_delivered: bool, attempts: int = 1) -> None:
        super().__init__(message)
        self.maybe_delivered = maybe_delivered
        self.attempts = attempts


class ConnectError(TransportError):
    """The gateway could not be reached (refused, unresolvable, connect timeout).
    Nothing was sent."""


class RequestTimeoutError(TransportError):
    """The gateway did not answer in time (read, write or pool timeout)."""


class RedisPublishError(SwitchboardError):
    """Publishing through Redis failed (``switchboard_rt.redis``).

    Attributes:
        maybe_delivered: ``True`` for a timeout (Redis may still have taken
            the message), ``False`` when the connection failed before sending.
    """

    def __init__(self, message: str, *, maybe_delivered: bool) -> None:
        super().__init__(message)
        self.maybe_delivered = maybe_delivered
