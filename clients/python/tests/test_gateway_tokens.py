"""Minted tokens against the real gateway: every algorithm it is configured
for authenticates the handshake; issuer, audience, permissions and expiry are
read as docs/security.md says."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from conftest import JWT_SECRET, Keys, start_gateway
from support import Gateway, Ws
from websockets.exceptions import InvalidStatus

from switchboard_rt import TokenSigner, mint_token
from switchboard_rt.tokens import Algorithm

pytestmark = pytest.mark.anyio


def private_key(keys: Keys, algorithm: str) -> object:
    return {
        "HS256": JWT_SECRET,
        "RS256": keys.rsa,
        "PS256": keys.rsa,
        "ES256": keys.ec256,
        "EdDSA": keys.ed,
    }[algorithm]


@pytest.mark.parametrize("algorithm", ["HS256", "RS256", "PS256", "ES256", "EdDSA"])
async def test_each_algorithm_authenticates(
    gateway: Gateway, keys: Keys, algorithm: Algorithm
) -> None:
    token = mint_token(private_key(keys, algorithm), f"user-{algorithm}", algorithm=algorithm)
    ws = await Ws.connect(gateway, token=token)
    assert ws.ack["payload"]["authenticated"] is True
    assert ws.user == f"user-{algorithm}"
    await ws.close()


async def test_wrong_key_and_expired_tokens_are_refused(gateway: Gateway) -> None:
    wrong = mint_token("x" * 32, "mallory")
    expired = mint_token(JWT_SECRET, "late", expires_in=1, now=time.time() - 3600)
    for token in (wrong, expired):
        with pytest.raises(InvalidStatus) as caught:
            await Ws.connect(gateway, token=token)
        assert caught.value.response.status_code == 401


STRICT = """
[[endpoints]]
path = "/ws"
protocol = "structured"

[endpoints.structured]
channels = [
  { pattern = "public:*", access = "anyone" },
  { pattern = "team:*", access = "permission:team" },
  { pattern = "ops:*", access = "admin" },
]
"""


@pytest.fixture
def strict_gateway(switchboard_bin: Path, keys: Keys, tmp_path: Path) -> Iterator[Gateway]:
    """Issuer and audience required; channels by permission and admin."""
    gw = start_gateway(
        tmp_path,
        keys,
        jwt_extra='issuers = ["https://auth.test"]\naudiences = ["chat"]',
        config_tail=STRICT,
    )
    yield gw
    gw.stop()


async def test_issuer_audience_permissions_admin(strict_gateway: Gateway) -> None:
    signer = TokenSigner(JWT_SECRET, issuer="https://auth.test", audience="chat")
    with pytest.raises(InvalidStatus):
        await Ws.connect(strict_gateway, token=mint_token(JWT_SECRET, "no-iss", audience="chat"))
    with pytest.raises(InvalidStatus):
        await Ws.connect(
            strict_gateway,
            token=mint_token(JWT_SECRET, "bad-aud", issuer="https://auth.test", audience="x"),
        )
    member = await Ws.connect(strict_gateway, token=signer.mint("erin", permissions=["team"]))
    await member.subscribe("team:1")
    plain = await Ws.connect(strict_gateway, token=signer.mint("frank"))
    with pytest.raises(AssertionError, match="forbidden"):
        await plain.subscribe("team:1")
    scoped = await Ws.connect(strict_gateway, token=signer.mint("gina", scope="team other"))
    await scoped.subscribe("team:1")
    admin = await Ws.connect(strict_gateway, token=signer.mint("hal", admin=True))
    await admin.subscribe("ops:alerts")
    for ws in (member, plain, scoped, admin):
        await ws.close()


async def test_authenticate_message_reads_exp_and_permissions(gateway: Gateway) -> None:
    ws = await Ws.connect(gateway)
    assert ws.ack["payload"]["authenticated"] is False
    token = mint_token(JWT_SECRET, "ivy", permissions=["chat:write"], expires_in=600)
    await ws.connection.send(
        json.dumps({"type": "AUTHENTICATE", "id": "a1", "payload": {"auth": {"token": token}}})
    )
    reply = json.loads(await asyncio.wait_for(ws.connection.recv(), 5))
    assert reply["type"] == "AUTHENTICATE_SUCCESS"
    assert reply["payload"]["user_id"] == "ivy"
    assert reply["payload"]["permissions"] == ["chat:write"]
    # The gateway reports the token's exp itself (docs/protocol.md: clients
    # refresh before it; the 4003 comes only after the leeway).
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    assert reply["payload"]["expires_at"] == exp
    await ws.close()
