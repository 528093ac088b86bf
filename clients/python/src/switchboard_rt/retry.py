"""Retries with exponential backoff for the HTTP clients."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["Retry"]


@dataclass(frozen=True)
class Retry:
    """When and how often a request is retried.

    A request is retried (up to ``attempts`` requests in all) when:

    - the connection could not be opened (``on_connect_error``): nothing was
      sent, so this is always safe;
    - the answer's status is in ``statuses`` (502, 503, 504): for a publish,
      503 ``broker_unavailable`` means the connections on the answering
      instance **already got the message**, the other instances did not;
    - the request timed out or the connection dropped while waiting for the
      answer (``on_network_error``): the gateway may have delivered it.

    So, until the gateway accepts idempotency keys (the streams work), a
    retried publish may reach some clients twice. Use :meth:`none` for
    at-most-once. Once the gateway advertises idempotency keys, the clients
    send one per publish, the same on every retry, and the gateway answers a
    repeated key with the first attempt's result instead of delivering again.

    Delays grow from ``backoff`` by ``multiplier`` up to ``max_backoff``, with
    jitter (each delay is drawn between half and all of its value). A
    ``Retry-After`` answer (503 answers carry ``Retry-After: 1``) raises the
    delay to that many seconds, capped at ``max_backoff``.
    """

    attempts: int = 3
    backoff: float = 0.1
    multiplier: float = 2.0
    max_backoff: float = 2.0
    jitter: bool = True
    statuses: frozenset[int] = field(default=frozenset({502, 503, 504}))
    on_connect_error: bool = True
    on_network_error: bool = True

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts: at least 1 (1 means no retries)")
        if self.backoff < 0 or self.max_backoff < 0 or self.multiplier < 1:
            raise ValueError("backoff and max_backoff must be >= 0, multiplier >= 1")

    @classmethod
    def none(cls) -> Retry:
        """No retries: every request is made once (at most once delivery)."""
        return cls(attempts=1)

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first)."""
        base = min(self.max_backoff, self.backoff * self.multiplier ** (retry - 1))
        if self.jitter:
            base = random.uniform(base / 2, base)
        if retry_after is not None:
            base = max(base, min(retry_after, self.max_backoff))
        return base
