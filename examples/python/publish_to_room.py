#!/usr/bin/env python3
"""Publish a message to a Switchboard room from a background worker.

Switchboard instances that share a Redis (the `switchboard-redis` broker)
listen on one channel per room with local members. Writing an envelope to
that channel reaches every member on every instance; no Switchboard code
runs in this process. Wire format, version 1 (docs/scaling.md):

    channel  <prefix>:v1:room:<room>                  (prefix: "sb")
    payload  {"v": 1, "kind": "text", "data": "<text>"}
             {"v": 1, "kind": "binary", "data": "<base64>"}

Usage:

    pip install redis
    python3 publish_to_room.py --url redis://127.0.0.1:6379 --room lobby --text "build finished"

Redis pub/sub is at most once: PUBLISH answers how many instances were
listening, and a message published while no instance has a member in the
room (or while Redis is down) reaches nobody. This script exits non-zero
when Redis refused or could not be reached, so a job runner sees the failure.
"""

import argparse
import base64
import json
import sys

import redis

WIRE_VERSION = 1


def room_channel(room: str, prefix: str = "sb") -> str:
    return f"{prefix}:v{WIRE_VERSION}:room:{room}"


def text_envelope(text: str) -> str:
    return json.dumps({"v": WIRE_VERSION, "kind": "text", "data": text}, separators=(",", ":"))


def binary_envelope(data: bytes) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return json.dumps({"v": WIRE_VERSION, "kind": "binary", "data": encoded}, separators=(",", ":"))


def publish_to_room(client: redis.Redis, room: str, envelope: str, prefix: str = "sb") -> int:
    """Publishes once; returns how many instances were listening to the room."""
    return client.publish(room_channel(room, prefix), envelope)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="redis://127.0.0.1:6379", help="Redis URL")
    parser.add_argument("--prefix", default="sb", help="the cluster's channel prefix")
    parser.add_argument("--room", required=True)
    body = parser.add_mutually_exclusive_group(required=True)
    body.add_argument("--text", help="a text message")
    body.add_argument("--binary-hex", help="a binary message, as hex")
    args = parser.parse_args()

    if args.text is not None:
        envelope = text_envelope(args.text)
    else:
        envelope = binary_envelope(bytes.fromhex(args.binary_hex))

    client = redis.Redis.from_url(args.url, socket_connect_timeout=2, socket_timeout=2)
    try:
        listening = publish_to_room(client, args.room, envelope, args.prefix)
    except redis.exceptions.RedisError as error:
        print(f"publish failed: {error}", file=sys.stderr)
        return 1
    print(f"published to {room_channel(args.room, args.prefix)}; {listening} instance(s) listening")
    return 0


if __name__ == "__main__":
    sys.exit(main())
