"""One :class:`~switchboard_rt.proxy.Proxy` with a handler for every call,
plain and async mixed, recording what it was told in ``SEEN`` (served as
``GET /seen`` by both apps)."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from switchboard_rt import Event, Notification
from switchboard_rt.proxy import (
    ConnectRequest,
    ConnectResult,
    DisconnectEvent,
    Proxy,
    RefreshRequest,
    Refuse,
    RpcError,
    RpcRequest,
    SubscribeRequest,
    SubscribeResult,
    UnsubscribeEvent,
)

# session cookie -> (user, teams, session lifetime in seconds or None)
SESSIONS: dict[str, tuple[str, list[str], float | None]] = {
    "s-alice": ("alice", ["red"], None),
    "s-rita": ("rita", [], 5.0),  # refreshed: stays
    "s-nora": ("nora", [], 5.0),  # not refreshed: closed 4003 at expiry
}
SEEN: dict[str, list[Any]] = {"refreshes": [], "disconnects": [], "unsubscribes": []}

proxy = Proxy()  # $SWITCHBOARD_PROXY_SECRET


@proxy.connect
async def connect(call: ConnectRequest) -> ConnectResult | None:
    if call.cookies.get("session") == "anonymous":
        return None
    session = SESSIONS.get(call.cookies.get("session", ""))
    if session is None:
        raise Refuse("Please sign in", status=401)
    user, teams, lifetime = session
    return ConnectResult(
        user,
        expires_at=None if lifetime is None else time.time() + lifetime,
        permissions=["orders:create"],
        channels=[f"user:{user}:orders"],
        meta={"teams": teams},
    )


@proxy.refresh
def refresh(call: RefreshRequest) -> float | None:
    SEEN["refreshes"].append({"user": call.user, "expires_at": call.expires_at})
    return time.time() + 3600 if call.user == "rita" else None


@proxy.subscribe("team:*")
def subscribe(call: SubscribeRequest) -> SubscribeResult | None:
    team = call.channel.removeprefix("team:")
    if team not in (call.meta or {}).get("teams", []):
        raise Refuse(f"not a member of team {team}")
    return SubscribeResult({"team": team, "user": call.user})


@proxy.rpc("orders.create")
async def create_order(call: RpcRequest) -> dict[str, Any]:
    if call.user is None:
        raise RpcError("sign_in_required", "Sign in to order")
    item = (call.data or {}).get("item")
    if not isinstance(item, str):
        raise RpcError("invalid_order", "item (string) please")
    await Event("order.created", {"item": item}).send_async(room=f"user:{call.user}:orders")
    return {"order_id": 17, "item": item}


@proxy.rpc("orders.notify")
def notify(call: RpcRequest) -> None:
    # A plain handler: the blocking default client (Message.send).
    Notification(title="Order", message="shipped", level="success").send(
        room=f"user:{call.user}:orders"
    )


@proxy.rpc("orders.*")
def other_orders(call: RpcRequest) -> None:
    if call.action == "orders.refuse":
        raise Refuse("No")
    raise RpcError("out_of_stock", f"{call.action}: only 2 left", temporary=True)


@proxy.disconnect
async def disconnected(event: DisconnectEvent) -> None:
    SEEN["disconnects"].append(dataclasses.asdict(event))


@proxy.unsubscribe
def unsubscribed(event: UnsubscribeEvent) -> None:
    SEEN["unsubscribes"].append(dataclasses.asdict(event))
