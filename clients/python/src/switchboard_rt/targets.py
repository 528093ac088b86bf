"""Who a publish or a disconnect goes to: a room (channel), a user, one
connection, or every connection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Target", "TargetKind", "resolve_target"]

TargetKind = Literal["room", "user", "connection", "all"]


@dataclass(frozen=True)
class Target:
    """A publish target, as the gateway's API takes it.

    Build one with :meth:`room`, :meth:`user`, :meth:`connection` or
    :meth:`all`; most calls also take the same as keyword arguments
    (``room="team:42"``).
    """

    kind: TargetKind
    value: str | None = None

    @classmethod
    def room(cls, name: str) -> Target:
        """Every member of a room. The structured protocol's channels are rooms
        (``public:news``); ``/ws/broadcast``'s clients are in the room ``broadcast``."""
        return cls("room", name)

    @classmethod
    def user(cls, user_id: str) -> Target:
        """Every connection of an authenticated user (the token's ``sub``)."""
        return cls("user", user_id)

    @classmethod
    def connection(cls, connection: str | int) -> Target:
        """One connection: its id on the instance that answers (``42``) or its
        cluster address (``"gw-1/42"``)."""
        return cls("connection", str(connection))

    @classmethod
    def all(cls) -> Target:
        """Every connection on every instance."""
        return cls("all", None)

    def to_api(self) -> dict[str, Any]:
        """The JSON object the HTTP API takes as ``target``."""
        if self.kind == "all":
            return {"all": True}
        return {self.kind: self.value}

    def __str__(self) -> str:
        return "all" if self.kind == "all" else f"{self.kind} {self.value}"


def resolve_target(
    target: Target | None = None,
    *,
    room: str | None = None,
    user: str | None = None,
    connection: str | int | None = None,
    all: bool = False,
) -> Target:
    """Turns keyword arguments into a :class:`Target`; exactly one must be given."""
    given: list[Target] = []
    if target is not None:
        given.append(target)
    if room is not None:
        given.append(Target.room(room))
    if user is not None:
        given.append(Target.user(user))
    if connection is not None:
        given.append(Target.connection(connection))
    if all:
        given.append(Target.all())
    if len(given) != 1:
        raise TypeError(
            "give exactly one target: room=, user=, connection=, all=True or target="
            f" (got {len(given)})"
        )
    return given[0]
