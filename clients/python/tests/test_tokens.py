"""Tokens, checked by an independent JWT implementation (PyJWT); the gateway
checks them in test_gateway_tokens.py."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from switchboard_rt import TokenSigner, mint_token

SECRET = "0123456789abcdef0123456789abcdef"


def test_hs256_claims() -> None:
    token = mint_token(
        SECRET,
        "alice",
        permissions=["chat:write"],
        scope=["a", "b"],
        audience="chat",
        issuer="https://auth.example.com",
        admin=True,
        expires_in=timedelta(minutes=5),
        claims={"team": 42},
    )
    claims = jwt.decode(
        token, SECRET, algorithms=["HS256"], audience="chat", issuer="https://auth.example.com"
    )
    assert claims["sub"] == "alice"
    assert claims["permissions"] == ["chat:write"]
    assert claims["scope"] == "a b"
    assert claims["admin"] is True
    assert claims["team"] == 42
    assert 299 <= claims["exp"] - claims["iat"] <= 300
    assert abs(claims["iat"] - time.time()) < 5
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}


@pytest.mark.parametrize(("algorithm", "size"), [("HS256", 32), ("HS384", 48), ("HS512", 64)])
def test_hmac_secrets_must_be_long_enough(algorithm: str, size: int) -> None:
    secret = "s" * size
    token = mint_token(secret, "u", algorithm=algorithm)  # type: ignore[arg-type]
    assert jwt.decode(token, secret, algorithms=[algorithm])["sub"] == "u"
    with pytest.raises(ValueError, match=f"at least {size} bytes"):
        mint_token(secret[:-1], "u", algorithm=algorithm)  # type: ignore[arg-type]


def test_asymmetric_algorithms() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cases: list[tuple[str, object, object]] = [
        ("RS256", pem, rsa_key.public_key()),
        ("RS384", rsa_key, rsa_key.public_key()),
        ("RS512", pem.decode(), rsa_key.public_key()),
        ("PS256", rsa_key, rsa_key.public_key()),
        ("PS512", rsa_key, rsa_key.public_key()),
    ]
    p256 = ec.generate_private_key(ec.SECP256R1())
    p384 = ec.generate_private_key(ec.SECP384R1())
    ed = ed25519.Ed25519PrivateKey.generate()
    cases += [
        ("ES256", p256, p256.public_key()),
        ("ES384", p384, p384.public_key()),
        ("EdDSA", ed, ed.public_key()),
    ]
    for algorithm, private, public in cases:
        token = mint_token(private, "bob", algorithm=algorithm, kid="k1")  # type: ignore[arg-type]
        claims = jwt.decode(token, public, algorithms=[algorithm])  # type: ignore[arg-type]
        assert claims["sub"] == "bob", algorithm
        assert jwt.get_unverified_header(token)["kid"] == "k1"
    with pytest.raises(TypeError, match="RSA"):
        mint_token(p256, "u", algorithm="RS256")
    with pytest.raises(TypeError, match="secp384r1"):
        mint_token(p256, "u", algorithm="ES384")
    with pytest.raises(TypeError, match="secret"):
        mint_token(rsa_key, "u", algorithm="HS256")


def test_times_and_claim_names() -> None:
    now = datetime(2030, 1, 1, tzinfo=timezone.utc)
    token = mint_token(
        SECRET,
        7,
        now=now,
        expires_in=60,
        not_before=now,
        user_claim="uid",
        permissions=["p"],
        permissions_claim="perms",
    )
    claims = jwt.decode(
        token,
        SECRET,
        algorithms=["HS256"],
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    assert claims == {
        "uid": 7,
        "iat": int(now.timestamp()),
        "exp": int(now.timestamp()) + 60,
        "nbf": int(now.timestamp()),
        "perms": ["p"],
    }
    with pytest.raises(ValueError, match="expires_in"):
        mint_token(SECRET, "u", expires_in=0)
    with pytest.raises(TypeError, match="permissions"):
        mint_token(SECRET, "u", permissions="chat:write")
    with pytest.raises(ValueError, match="algorithm"):
        mint_token(SECRET, "u", algorithm="none")  # type: ignore[arg-type]


def test_signer_checks_its_key_at_once() -> None:
    signer = TokenSigner(SECRET, issuer="iss", audience=["a", "b"], expires_in=120)
    claims = jwt.decode(signer.mint("carol"), SECRET, algorithms=["HS256"], audience="a")
    assert claims["iss"] == "iss"
    assert claims["aud"] == ["a", "b"]
    with pytest.raises(ValueError, match="at least 32 bytes"):
        TokenSigner("short")
    assert SECRET not in repr(signer)
