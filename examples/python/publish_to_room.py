#!/usr/bin/env python3
"""Publish a message to a Switchboard room from a background worker, through Redis.

Switchboard instances that share a Redis (`broker.type = "redis"`) listen on
one channel per room with local members; this worker writes there with the
`switchboard-realtime` package (`switchboard_rt.redis`, docs/python.md). No
gateway code runs in this process and it needs no HTTP access.

Rooms with history (the gateway's `[history]`: `public:*` and `user:*` by
default) are published to with the gateway's append script, never a bare
PUBLISH: the message gets an offset in the room's stream, subscribers get it
in order and once, a client that was disconnected recovers it, and
`GET /api/v1/channels/<room>/history` lists it. The worker must be told the
same rules as the gateway (`--history`, `--durable`; the defaults are the
gateway's). Other rooms get one PUBLISH: at most once.

Usage (from a checkout: `pip install './clients/python[redis]'`, or just
`pip install redis httpx`, and the script finds the package beside it):

    # A structured EVENT to /ws clients subscribed to public:lobby (the default room):
    python3 publish_to_room.py --event build.finished --data '{"build": 42}'
    # Raw text to /ws/broadcast clients (the room `broadcast`, no history):
    python3 publish_to_room.py --room broadcast --text "build finished"
    python3 publish_to_room.py --room broadcast --binary-hex 00ff10

/ws clients speak the structured protocol (docs/protocol.md) and expect its
envelope: send them --event. /ws/broadcast clients get --text and
--binary-hex as they are.

It prints where the message went, how many instances were listening, and,
for a room with history, its offset and epoch. Exit status:

    0  published. For a room with history this includes "0 instances
       listening": the message is in the room's stream, and clients that
       subscribe with `recover` or `last`, or read the history, still get it
       within the rule's ttl (10 minutes by default); that is not a loss.
    1  Redis refused or could not be reached (nothing, or maybe something,
       was published: the message says which).
    3  a room without history and no instance listening: nobody got the
       message and nobody ever will. --allow-nobody makes this 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

try:
    import switchboard_rt  # noqa: F401
except ImportError:  # a checkout without the package installed: use the one beside us
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python" / "src"))

from switchboard_rt import Event, HistoryConfig, HistoryRule, RedisPublishError
from switchboard_rt.redis import RedisPublisher

NOBODY_LISTENING = 3


def history_config(patterns: list[str] | None, durable: bool) -> HistoryConfig:
    """The gateway's `[history]` as told on the command line: `--history
    PATTERN` repeated (default `public:*` and `user:*`), `--history none`."""
    if patterns is None:
        return HistoryConfig(durable=durable)
    if patterns == ["none"]:
        return HistoryConfig.none()
    return HistoryConfig(channels=[HistoryRule(p) for p in patterns], durable=durable)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--url",
        default=None,
        help="Redis URL (default $SWITCHBOARD_BROKER_URL, else redis://127.0.0.1:6379)",
    )
    parser.add_argument(
        "--prefix", default="sb", help="the cluster's channel prefix (broker.prefix)"
    )
    parser.add_argument("--room", default="public:lobby", help="the room (default public:lobby)")
    body = parser.add_mutually_exclusive_group(required=True)
    body.add_argument("--event", help="a structured EVENT with this name (for /ws clients)")
    body.add_argument("--text", help="raw text, as is (for /ws/broadcast clients)")
    body.add_argument("--binary-hex", help="raw binary, as hex (for /ws/broadcast clients)")
    parser.add_argument("--data", default="null", help="the EVENT's data, as JSON")
    parser.add_argument(
        "--history",
        action="append",
        metavar="PATTERN",
        help="a room pattern with history, as the gateway's [[history.channels]] (repeat;"
        " default public:* and user:*; `none` for none). Must match the gateway",
    )
    parser.add_argument("--durable", action="store_true", help="the gateway's broker.durable")
    parser.add_argument(
        "--idempotency-key", help="your name for this message (default: a fresh one)"
    )
    parser.add_argument(
        "--allow-nobody",
        action="store_true",
        help="exit 0 when a room without history has no instance listening",
    )
    args = parser.parse_args(argv)

    message: Any
    if args.event is not None:
        message = Event(args.event, json.loads(args.data))
    elif args.text is not None:
        message = args.text
    else:
        message = bytes.fromhex(args.binary_hex)

    history = history_config(args.history, args.durable)
    try:
        with RedisPublisher.from_url(args.url, prefix=args.prefix, history=history) as publisher:
            result = publisher.publish(
                message, room=args.room, idempotency_key=args.idempotency_key
            )
    except RedisPublishError as error:
        maybe = "it may have been published" if error.maybe_delivered else "nothing was published"
        print(f"publish failed ({maybe}): {error}", file=sys.stderr)
        return 1

    print(f"published to {result.channel}; {result.listening} instance(s) listening")
    if result.offset is not None:
        again = " (a duplicate: the first publish with this key)" if result.duplicate else ""
        print(f"offset {result.offset}, epoch {result.epoch}{again}")
        if result.listening == 0:
            print(
                f"{args.room} keeps a history: the message is in its stream, for clients that"
                " recover or read the history later"
            )
        return 0
    if result.listening == 0 and not args.allow_nobody:
        print(
            f"nobody received it: no instance has a member in {args.room}, which keeps no"
            " history (--allow-nobody to accept that)",
            file=sys.stderr,
        )
        return NOBODY_LISTENING
    return 0


if __name__ == "__main__":
    sys.exit(main())
