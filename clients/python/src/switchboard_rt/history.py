"""Which rooms keep a history, for publishers that write to Redis themselves.

The gateway decides which channels (rooms) keep a history from its
``[history]`` settings (docs/configuration.md): by default ``public:*`` and
``user:*`` keep 100 publications for 10 minutes. A publish through the
gateway's HTTP API needs nothing from you. A worker that publishes straight
to Redis (:mod:`switchboard_rt.redis`) must do what the gateway would: run
the append script for a room with history, with the same sizes and times.
:class:`HistoryConfig` tells it which rooms those are, and **must match the
gateway's** ``[history]`` **table** (and ``broker.durable``); the defaults
match the gateway's defaults.

A pattern is ``:``-separated segments, as in the gateway's channel rules
(docs/protocol.md, Channels): literal text, ``*`` within a segment, a final
``*`` segment matching the rest of the name (``public:*`` matches
``public:news`` and ``public:news:eu``, not ``public``), and ``{user_id}``,
which matches any one non-empty segment here. The first matching rule wins.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["HistoryConfig", "HistoryRule", "pattern_matches"]

_CHANNEL_CHAR = re.compile(r"[A-Za-z0-9:_\-.@/=]")
_MAX_SIZE = 100_000


def _check_pattern(pattern: str) -> str:
    """Refuses what the gateway's ``ChannelPattern::new`` refuses."""
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"invalid channel pattern {pattern!r}: empty")
    users = 0
    for part in pattern.split(":"):
        if part == "{user_id}":
            users += 1
        elif "{" in part or "}" in part:
            raise ValueError(
                f"invalid channel pattern {pattern!r}: the only placeholder is a whole"
                " segment {user_id}"
            )
        else:
            bad = next((c for c in part if c != "*" and not _CHANNEL_CHAR.fullmatch(c)), None)
            if bad is not None:
                raise ValueError(
                    f"invalid channel pattern {pattern!r}: {bad!r} cannot appear in a channel name"
                )
    if users > 1:
        raise ValueError(f"invalid channel pattern {pattern!r}: {{user_id}} may appear once")
    return pattern


def _glob(pattern: str, text: str) -> bool:
    """``*`` matches any run of characters; everything else matches itself."""
    p = t = 0
    star: tuple[int, int] | None = None
    while t < len(text):
        if p < len(pattern) and pattern[p] == "*":
            star = (p, t)
            p += 1
        elif p < len(pattern) and pattern[p] == text[t]:
            p += 1
            t += 1
        elif star is not None:
            p, t = star[0] + 1, star[1] + 1
            star = (star[0], star[1] + 1)
        else:
            return False
    return all(c == "*" for c in pattern[p:])


def pattern_matches(pattern: str, channel: str) -> bool:
    """Whether ``channel`` matches ``pattern``, as the gateway matches its
    history rules (``{user_id}`` matches any one non-empty segment)."""
    parts = pattern.split(":")
    rest = len(parts) > 1 and parts[-1] == "*"
    if rest:
        parts.pop()
    names = channel.split(":")
    if len(names) < len(parts):
        return False
    for segment, name in zip(parts, names, strict=False):
        if segment == "{user_id}":
            if not name:
                return False
        elif "*" in segment:
            if not _glob(segment, name):
                return False
        elif segment != name:
            return False
    more = len(names) > len(parts)
    return more == rest


@dataclass(frozen=True)
class HistoryRule:
    """Rooms matching ``pattern`` keep their latest ``size`` publications
    (1 to 100,000) for ``ttl`` seconds after each (the gateway's
    ``[[history.channels]]``: ``pattern``, ``size``, ``ttl``)."""

    pattern: str
    size: int = 100
    ttl: float = 600.0

    def __post_init__(self) -> None:
        _check_pattern(self.pattern)
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise TypeError("size: must be an int")
        if not 1 <= self.size <= _MAX_SIZE:
            raise ValueError(f"size: must be 1 to {_MAX_SIZE}")
        if self.ttl < 1:
            raise ValueError("ttl: must be at least 1 second")

    def matches(self, room: str) -> bool:
        """Whether this rule is for ``room``."""
        return pattern_matches(self.pattern, room)


def _default_rules() -> tuple[HistoryRule, ...]:
    return (HistoryRule("public:*"), HistoryRule("user:*"))


@dataclass(frozen=True)
class HistoryConfig:
    """The gateway's ``[history]`` (and ``broker.durable``), as a Redis
    publisher needs it. The defaults are the gateway's defaults.

    Attributes:
        channels: the rules, first match wins (``history.channels``); empty
            means no room keeps a history (``channels = []``).
        meta_ttl: seconds a room's epoch and latest offset outlive its last
            publication (``history.meta_ttl``, 24 hours).
        idempotency_window: seconds an idempotency key is remembered
            (``history.idempotency_window``, 5 minutes).
        durable: the gateway's ``broker.durable``: Redis runs with
            ``appendonly yes`` and ``appendfsync always``, so a restarted
            Redis keeps its epochs. Otherwise a new Redis ``run_id`` starts a
            new epoch.
    """

    channels: Sequence[HistoryRule] = field(default_factory=_default_rules)
    meta_ttl: float = 86_400.0
    idempotency_window: float = 300.0
    durable: bool = False

    def __post_init__(self) -> None:
        rules = tuple(self.channels)
        for rule in rules:
            if not isinstance(rule, HistoryRule):
                raise TypeError("channels: HistoryRule values")
            if rule.ttl > self.meta_ttl:
                raise ValueError(f"channels: {rule.pattern}'s ttl must not be longer than meta_ttl")
        if self.idempotency_window < 1:
            raise ValueError("idempotency_window: must be at least 1 second")
        object.__setattr__(self, "channels", rules)

    @classmethod
    def none(cls) -> HistoryConfig:
        """No room keeps a history (``[history] channels = []``)."""
        return cls(channels=())

    def rule_for(self, room: str) -> HistoryRule | None:
        """The rule for ``room`` (the first that matches), or ``None`` when
        it keeps no history."""
        for rule in self.channels:
            if rule.matches(room):
                return rule
        return None
