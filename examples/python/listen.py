#!/usr/bin/env python3
"""Connect to a Switchboard gateway's /ws, subscribe to channels, and print what arrives.

The client of docs/quickstart.md, step 3: it speaks the structured protocol
(docs/protocol.md) with the `websockets` package, so that it can answer the
server's heartbeat (an interactive WebSocket client cannot: the gateway closes
a connection that has not answered its PING within 35 seconds with 4006).

    python3 -m venv target/quickstart-venv
    target/quickstart-venv/bin/pip install websockets
    target/quickstart-venv/bin/python examples/python/listen.py public:lobby

It prints the server's CONNECT_ACK, the SUBSCRIBE it sends (`>`), and every
message the server sends after that (`<`), one JSON object a line, until the
connection closes or Ctrl-C. It answers PING with PONG and does not print
them. Exit status: 0 when the server closed the connection with 1000 or 1001
(a shutdown) or on Ctrl-C; 1 when it could not connect or the connection
closed otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid

from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect
from websockets.typing import Subprotocol


def show(message: str | bytes) -> str:
    """A message as printed: text as it is, binary (not the protocol's) in hex."""
    return message if isinstance(message, str) else f"(binary) {message.hex()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("channels", nargs="+", help="channels to subscribe to (public:lobby)")
    parser.add_argument(
        "--url",
        default=os.environ.get("SWITCHBOARD_WS_URL", "ws://127.0.0.1:8080/ws"),
        help="the structured endpoint (default $SWITCHBOARD_WS_URL, else ws://127.0.0.1:8080/ws)",
    )
    args = parser.parse_args(argv)

    try:
        ws = connect(args.url, subprotocols=[Subprotocol("switchboard.v1")])
    except (OSError, InvalidHandshake) as e:
        print(f"could not connect to {args.url}: {e}", file=sys.stderr)
        return 1
    with ws:
        print(f"connected: {show(ws.recv())}", flush=True)
        subscribe = {
            "type": "SUBSCRIBE",
            "id": "listen-1",
            "payload": {"subscriptions": args.channels},
        }
        ws.send(json.dumps(subscribe))
        print(f"> {json.dumps(subscribe)}", flush=True)
        try:
            for message in ws:
                try:
                    envelope = json.loads(message)
                except ValueError:  # not the protocol's JSON: show it as it came
                    envelope = None
                if isinstance(envelope, dict) and envelope.get("type") == "PING":
                    pong = {"type": "PONG", "id": str(uuid.uuid4())}
                    pong["correlation_id"] = envelope["id"]
                    ws.send(json.dumps(pong))
                    continue
                print(f"< {show(message)}", flush=True)
        except KeyboardInterrupt:
            return 0
        except ConnectionClosed:
            pass
    code = ws.close_code
    print(f"closed: {code} {ws.close_reason or ''}".rstrip(), flush=True)
    return 0 if code in (1000, 1001) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
