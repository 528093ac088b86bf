"""HistoryConfig matches rooms as the gateway's history rules do (the cases
of crates/switchboard-protocol/src/pattern.rs), and refuses what it refuses."""

from __future__ import annotations

import pytest

from switchboard_rt import HistoryConfig, HistoryRule
from switchboard_rt._wire_v1 import (
    APPEND_SCRIPT,
    append_keys,
    check_idempotency_key,
    new_epoch,
)
from switchboard_rt.history import pattern_matches


@pytest.mark.parametrize(
    ("pattern", "channel", "matches"),
    [
        ("public:*", "public:news", True),
        ("public:*", "public:news:eu", True),
        ("public:*", "public:", True),
        ("public:*", "public", False),
        ("public:*", "publicity:x", False),
        ("user:{user_id}:*", "user:alice:inbox", True),
        ("user:{user_id}:*", "user::inbox", False),
        ("user:{user_id}:*", "user:alice", False),
        ("chat-*:lobby", "chat-eu:lobby", True),
        ("chat-*:lobby", "chat-eu:lobby:x", False),
        ("exact", "exact", True),
        ("exact", "exact:x", False),
        ("*", "anything", True),
        ("*", "a:b", False),
        ("a*b*c", "aXXbYYc", True),
        ("a*b", "aXXc", False),
        ("**a", "a", True),
        ("*a*a*a*a*a*a*b", "a" * 255, False),
        ("user:*", "user:alice", True),
        ("user:*", "user:alice:inbox", True),
    ],
)
def test_patterns_match_as_the_gateway_does(pattern: str, channel: str, matches: bool) -> None:
    assert pattern_matches(pattern, channel) is matches


@pytest.mark.parametrize("bad", ["", "a:{user}", "{user_id}:{user_id}", "a b", "x:{user_id}x"])
def test_bad_patterns_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid channel pattern"):
        HistoryRule(bad)


def test_defaults_are_the_gateways() -> None:
    config = HistoryConfig()
    assert [r.pattern for r in config.channels] == ["public:*", "user:*"]
    assert {(r.size, r.ttl) for r in config.channels} == {(100, 600.0)}
    assert (config.meta_ttl, config.idempotency_window, config.durable) == (86_400, 300, False)
    assert config.rule_for("public:news") is config.channels[0]
    assert config.rule_for("user:alice") is config.channels[1]
    assert config.rule_for("team:42") is None
    assert config.rule_for("broadcast") is None
    assert HistoryConfig.none().rule_for("public:news") is None


def test_first_match_wins_and_limits() -> None:
    config = HistoryConfig(
        channels=[HistoryRule("orders:vip:*", size=1000), HistoryRule("orders:*", size=10)]
    )
    rule = config.rule_for("orders:vip:1")
    assert rule is not None
    assert rule.size == 1000
    with pytest.raises(ValueError, match="size"):
        HistoryRule("a:*", size=0)
    with pytest.raises(ValueError, match="size"):
        HistoryRule("a:*", size=100_001)
    with pytest.raises(ValueError, match="ttl"):
        HistoryRule("a:*", ttl=0.5)
    with pytest.raises(ValueError, match="meta_ttl"):
        HistoryConfig(channels=[HistoryRule("a:*", ttl=7200)], meta_ttl=3600)


def test_append_keys_and_arguments() -> None:
    assert append_keys("sb", "public:news", "k-1") == [
        "sb:v1:meta:{public:news}",
        "sb:v1:stream:{public:news}",
        "sb:v1:idem:{public:news}:k-1",
    ]
    assert append_keys("x", "r", None)[2] == ""
    epoch = new_epoch()
    assert len(epoch) == 16
    assert int(epoch, 16) >= 0
    assert check_idempotency_key("a" * 128) == "a" * 128
    for bad in ("", "a" * 129, "a b", "é", "tab\t"):
        with pytest.raises(ValueError, match="idempotency_key"):
            check_idempotency_key(bad)
    # The script's header lists what the publishers pass.
    assert "KEYS[1] meta hash, KEYS[2] stream, KEYS[3] idempotency key or ''" in APPEND_SCRIPT
    assert "ARGV[9] the server's run_id" in APPEND_SCRIPT
