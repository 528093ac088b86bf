"""A backend for the Switchboard gateway's proxy, in FastAPI (docs/proxy.md).

The gateway asks it who a connection is (connect: a session cookie), which
`team:*` channels a user may subscribe to (subscribe), answers the actions
`orders.*` (rpc: `orders.create` stores an order and publishes an EVENT back
through the gateway's HTTP API), and tells it when connections end
(disconnect). Every call is checked against the gateway's signature.

Run it (see README.md):

    SWITCHBOARD_PROXY_SECRET=... uvicorn app:app --port 8000

Environment:
    SWITCHBOARD_PROXY_SECRET  the secret shared with the gateway's [proxy] (required)
    SWITCHBOARD_URL           the gateway's HTTP side (default http://127.0.0.1:8080)
    SWITCHBOARD_API_KEY       its API key, if it has one
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import logging
import os
import urllib.request
from http.cookies import SimpleCookie
from typing import Any

from fastapi import FastAPI, HTTPException, Request

SECRET = os.environ["SWITCHBOARD_PROXY_SECRET"].encode()
GATEWAY = os.environ.get("SWITCHBOARD_URL", "http://127.0.0.1:8080").rstrip("/")
API_KEY = os.environ.get("SWITCHBOARD_API_KEY")

# A real application would look sessions up in its database.
SESSIONS: dict[str, dict[str, Any]] = {
    "s-alice": {"user": "alice", "teams": ["red"]},
    "s-bob": {"user": "bob", "teams": ["blue"]},
}
ORDERS: list[dict[str, Any]] = []
DISCONNECTS: list[dict[str, Any]] = []
_order_ids = itertools.count(1)

log = logging.getLogger("fastapi_backend")
app = FastAPI(title="Switchboard proxy backend")


async def verified(request: Request) -> dict[str, Any]:
    """The call's JSON body, once its signature is checked.

    The gateway signs every body with HMAC-SHA256 and the shared secret:
    `X-Switchboard-Signature: sha256=<hex>`. A call that does not verify did
    not come from the gateway: answer something other than 200, which the
    gateway treats as a failure.
    """
    body = await request.body()
    expected = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    given = request.headers.get("x-switchboard-signature", "")
    if not hmac.compare_digest(expected, given):
        raise HTTPException(status_code=401, detail="bad signature")
    log.info("%s request_id=%s", request.url.path, request.headers.get("x-request-id"))
    return json.loads(body)


@app.post("/switchboard/connect")
async def connect(request: Request) -> dict[str, Any]:
    call = await verified(request)
    cookies = SimpleCookie(call["headers"].get("cookie", ""))
    session = SESSIONS.get(cookies["session"].value) if "session" in cookies else None
    if session is None:
        # The browser sees close code 1008 with this message.
        return {"error": {"message": "Please sign in", "status": 401}}
    user = session["user"]
    return {
        "result": {
            "user": user,
            "permissions": ["orders:create"],
            # Subscribed at once, no SUBSCRIBE needed.
            "channels": [f"user:{user}:orders"],
            # Comes back with every later call about this connection.
            "meta": {"teams": session["teams"]},
        }
    }


@app.post("/switchboard/subscribe")
async def subscribe(request: Request) -> dict[str, Any]:
    call = await verified(request)
    team = call["channel"].removeprefix("team:")
    teams = (call.get("meta") or {}).get("teams", [])
    if team not in teams:
        return {"error": {"message": f"not a member of team {team}"}}
    # Goes to the client in SUBSCRIBE_SUCCESS.
    return {"result": {"data": {"team": team, "members": 1 + len(team)}}}


@app.post("/switchboard/rpc")
async def rpc(request: Request) -> dict[str, Any]:
    call = await verified(request)
    if call["action"] != "orders.create":
        return {"error": {"code": "unknown_order_action", "message": f"no action {call['action']}"}}
    if call["user"] is None:
        return {"error": {"code": "sign_in_required", "message": "Sign in to order"}}
    data = call.get("data") or {}
    item, quantity = data.get("item"), data.get("quantity", 1)
    if not isinstance(item, str) or not isinstance(quantity, int) or quantity < 1:
        return {
            "error": {
                "code": "invalid_order",
                "message": "item (string) and quantity (>= 1) please",
            }
        }
    order = {"id": next(_order_ids), "user": call["user"], "item": item, "quantity": quantity}
    ORDERS.append(order)
    # Tell every connection of the user, through the gateway's HTTP API.
    await asyncio.to_thread(
        publish,
        f"user:{call['user']}:orders",
        {"type": "EVENT", "event": "order.created", "data": order},
    )
    return {"result": {"order_id": order["id"]}}


@app.post("/switchboard/disconnect")
async def disconnect(request: Request) -> dict[str, Any]:
    call = await verified(request)
    DISCONNECTS.extend(call["events"])
    for event in call["events"]:
        log.info(
            "disconnected %s (%s) after %.1fs",
            event["connection"],
            event["code"],
            event["duration"],
        )
    return {}


@app.get("/orders")
async def orders() -> dict[str, Any]:
    """What the backend stored (for people, and for the gateway's CI test)."""
    return {"orders": ORDERS, "disconnects": DISCONNECTS}


def publish(channel: str, message: dict[str, Any]) -> None:
    """POST /api/v1/publish: the message to the channel's subscribers."""
    body = json.dumps({"target": {"room": channel}, "message": message}).encode()
    headers = {"Content-Type": "application/json"}
    if API_KEY:
        headers["Authorization"] = f"Bearer {API_KEY}"
    request = urllib.request.Request(
        f"{GATEWAY}/api/v1/publish", data=body, headers=headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        response.read()
