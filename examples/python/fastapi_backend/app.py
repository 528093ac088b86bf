"""A backend for the Switchboard gateway's proxy, in FastAPI (docs/proxy.md),
with the Python package's proxy helpers (switchboard_rt.proxy,
switchboard_rt.fastapi).

The gateway asks it who a connection is (connect: a session cookie), which
`team:*` channels a user may subscribe to (subscribe), answers the actions
`orders.*` (rpc: `orders.create` stores an order and publishes an EVENT back
through the gateway's HTTP API), and tells it when connections end
(disconnect). The package checks every call's signature before a handler
sees it.

Run it (see README.md):

    SWITCHBOARD_PROXY_SECRET=... uvicorn app:app --port 8000

Environment:
    SWITCHBOARD_PROXY_SECRET  the secret shared with the gateway's [proxy] (required)
    SWITCHBOARD_URL           the gateway's HTTP side (default http://127.0.0.1:8080)
    SWITCHBOARD_API_KEY       its API key, if it has one
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from typing import Any

from fastapi import FastAPI

from switchboard_rt import Event
from switchboard_rt.fastapi import fastapi_router
from switchboard_rt.proxy import (
    ConnectRequest,
    ConnectResult,
    DisconnectEvent,
    Proxy,
    Refuse,
    RpcError,
    RpcRequest,
    SubscribeRequest,
    SubscribeResult,
)

# A real application would look sessions up in its database.
SESSIONS: dict[str, dict[str, Any]] = {
    "s-alice": {"user": "alice", "teams": ["red"]},
    "s-bob": {"user": "bob", "teams": ["blue"]},
}
ORDERS: list[dict[str, Any]] = []
DISCONNECTS: list[dict[str, Any]] = []
_order_ids = itertools.count(1)

log = logging.getLogger("fastapi_backend")
# The secret from $SWITCHBOARD_PROXY_SECRET: a call that does not verify is
# answered 401 (a failure for the gateway) and never reaches a handler.
proxy = Proxy()


@proxy.connect
async def connect(call: ConnectRequest) -> ConnectResult:
    session = SESSIONS.get(call.cookies.get("session", ""))
    if session is None:
        # The browser sees close code 1008 with this message.
        raise Refuse("Please sign in", status=401)
    user = session["user"]
    log.info("connect %s request_id=%s", user, call.request_id)
    return ConnectResult(
        user,
        permissions=["orders:create"],
        # Subscribed at once, no SUBSCRIBE needed.
        channels=[f"user:{user}:orders"],
        # Comes back with every later call about this connection.
        meta={"teams": session["teams"]},
    )


@proxy.subscribe("team:*")
async def subscribe(call: SubscribeRequest) -> SubscribeResult:
    team = call.channel.removeprefix("team:")
    teams = (call.meta or {}).get("teams", [])
    if team not in teams:
        # SUBSCRIBE_FAILURE, code forbidden, with this reason.
        raise Refuse(f"not a member of team {team}")
    # Goes to the client in SUBSCRIBE_SUCCESS.
    return SubscribeResult({"team": team, "members": 1 + len(team)})


@proxy.rpc("orders.create")
async def create_order(call: RpcRequest) -> dict[str, Any]:
    if call.user is None:
        raise RpcError("sign_in_required", "Sign in to order")
    data = call.data or {}
    item, quantity = data.get("item"), data.get("quantity", 1)
    if not isinstance(item, str) or not isinstance(quantity, int) or quantity < 1:
        # The client gets ERROR with this code, correlated with its ACTION.
        raise RpcError("invalid_order", "item (string) and quantity (>= 1) please")
    order = {"id": next(_order_ids), "user": call.user, "item": item, "quantity": quantity}
    ORDERS.append(order)
    # Tell every connection of the user, through the gateway's HTTP API
    # (an AsyncClient from $SWITCHBOARD_URL and $SWITCHBOARD_API_KEY).
    await Event("order.created", order).send_async(room=f"user:{call.user}:orders")
    # The client's ACTION_RESULT data.
    return {"order_id": order["id"]}


@proxy.rpc("orders.*")
async def other_order_actions(call: RpcRequest) -> None:
    raise RpcError("unknown_order_action", f"no action {call.action}")


@proxy.disconnect
def disconnected(event: DisconnectEvent) -> None:
    DISCONNECTS.append(dataclasses.asdict(event))
    log.info("disconnected %s (%s) after %.1fs", event.connection, event.code, event.duration)


app = FastAPI(title="Switchboard proxy backend")
# POST /switchboard/connect, /switchboard/subscribe, /switchboard/rpc, ...
app.include_router(fastapi_router(proxy))


@app.get("/orders")
async def orders() -> dict[str, Any]:
    """What the backend stored (for people, and for the gateway's CI test)."""
    return {"orders": ORDERS, "disconnects": DISCONNECTS}
