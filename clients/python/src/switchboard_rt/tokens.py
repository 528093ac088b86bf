"""Connection tokens: JWTs the gateway accepts (docs/security.md, "JWT").

The gateway reads ``sub`` (the user id; ``security.jwt.user_claim``), ``exp``
(always required), ``nbf`` (checked when present), ``iss`` and ``aud`` (required
once issuers or audiences are configured), ``permissions`` (an array of
strings; ``security.jwt.permissions_claim``), ``scope`` (space-separated,
added to the permissions) and ``admin`` (``true`` for an administrator).

HMAC algorithms (HS256, HS384, HS512) need nothing beyond the standard
library. RS256/384/512, PS256/384/512, ES256, ES384 and EdDSA (Ed25519) need
the ``crypto`` extra (``cryptography``)::

    from switchboard_rt.tokens import mint_token

    token = mint_token(secret, "alice", permissions=["chat:write"], expires_in=900)
    # Authorization: Bearer <token>, or from a browser (with the gateway's
    # security.token_sources listing "protocol:bearer."):
    # new WebSocket(url, ["switchboard.v1", "bearer." + token])
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

__all__ = ["Algorithm", "TokenSigner", "mint_token"]

Algorithm = Literal[
    "HS256", "HS384", "HS512",
    "RS256", "RS384", "RS512",
    "PS256", "PS384", "PS512",
    "ES256", "ES384",
    "EdDSA",
]  # fmt: skip
"""The signature algorithms the gateway verifies."""

_ALGORITHMS: frozenset[str] = frozenset(get_args(Algorithm))
_HMAC = {
    "HS256": (hashlib.sha256, 32),
    "HS384": (hashlib.sha384, 48),
    "HS512": (hashlib.sha512, 64),
}

DEFAULT_EXPIRES_IN = 900.0
"""Tokens live 15 minutes unless told otherwise: the structured protocol
refreshes them with ``AUTHENTICATE`` (docs/protocol.md)."""

Seconds = float | timedelta
Instant = float | datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _seconds(value: Seconds) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _instant(value: Instant) -> int:
    return int(value.timestamp() if isinstance(value, datetime) else value)


def mint_token(
    key: str | bytes | Any,
    user: str | int,
    *,
    expires_in: Seconds = DEFAULT_EXPIRES_IN,
    algorithm: Algorithm = "HS256",
    permissions: Sequence[str] | None = None,
    scope: str | Sequence[str] | None = None,
    audience: str | Sequence[str] | None = None,
    issuer: str | None = None,
    admin: bool | None = None,
    not_before: Instant | None = None,
    kid: str | None = None,
    claims: Mapping[str, Any] | None = None,
    user_claim: str = "sub",
    permissions_claim: str = "permissions",
    now: Instant | None = None,
) -> str:
    """Mints a signed JWT for one user.

    Args:
        key: the HMAC secret (``str`` or ``bytes``, at least 32/48/64 bytes for
            HS256/384/512, as the gateway requires), or a private key for the
            other algorithms: PEM (``str``/``bytes``) or a ``cryptography``
            private key object.
        user: the user id, in ``sub`` (or ``user_claim``).
        expires_in: lifetime in seconds (or a ``timedelta``); ``exp`` = now + this.
        algorithm: one the gateway's key is pinned to (default HS256).
        permissions: strings for ``permissions`` (or ``permissions_claim``),
            read by guards and channel rules (``permission:<name>``).
        scope: OAuth-style scope, space-separated or a list; the gateway adds
            it to the permissions.
        audience: ``aud``, one or several.
        issuer: ``iss``.
        admin: ``admin: true`` makes the user an administrator.
        not_before: ``nbf``, a Unix time or a ``datetime``.
        kid: the key id, in the header, for gateways with several keys.
        claims: more claims (they override the ones above).
        now: the issue time (``iat``), for tests; default the current time.

    Returns:
        The compact JWT (``header.claims.signature``).
    """
    if algorithm not in _ALGORITHMS:
        raise ValueError(f"algorithm: {algorithm!r} is not one of {', '.join(sorted(_ALGORITHMS))}")
    lifetime = _seconds(expires_in)
    if lifetime <= 0:
        raise ValueError("expires_in: must be positive (the gateway requires exp)")
    issued = float(_instant(now)) if now is not None else time.time()
    body: dict[str, Any] = {user_claim: user, "iat": int(issued), "exp": int(issued + lifetime)}
    if not_before is not None:
        body["nbf"] = _instant(not_before)
    if issuer is not None:
        body["iss"] = issuer
    if audience is not None:
        body["aud"] = audience if isinstance(audience, str) else list(audience)
    if permissions is not None:
        if isinstance(permissions, str):
            raise TypeError("permissions: a list of strings, not one string")
        body[permissions_claim] = list(permissions)
    if scope is not None:
        body["scope"] = scope if isinstance(scope, str) else " ".join(scope)
    if admin is not None:
        body["admin"] = admin
    if claims:
        body.update(claims)
    header: dict[str, Any] = {"alg": algorithm, "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    signing_input = ".".join(
        _b64(json.dumps(part, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
        for part in (header, body)
    ).encode("ascii")
    return signing_input.decode("ascii") + "." + _b64(_sign(algorithm, key, signing_input))


def _sign(algorithm: str, key: Any, data: bytes) -> bytes:
    if algorithm in _HMAC:
        digest, minimum = _HMAC[algorithm]
        if not isinstance(key, (str, bytes)):
            raise TypeError(f"{algorithm} needs a secret (str or bytes)")
        secret = key.encode("utf-8") if isinstance(key, str) else key
        if len(secret) < minimum:
            raise ValueError(
                f"a {algorithm} secret needs at least {minimum} bytes, got {len(secret)}"
                " (the gateway refuses shorter ones: RFC 7518 section 3.2)"
            )
        return hmac.new(secret, data, digest).digest()
    return _sign_asymmetric(algorithm, key, data)


def _sign_asymmetric(algorithm: str, key: Any, data: bytes) -> bytes:
    try:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"{algorithm} tokens need the 'cryptography' package:"
            " pip install 'switchboard-realtime[crypto]'"
        ) from exc

    private = _load_pem(key) if isinstance(key, (str, bytes)) else key

    hash_for: dict[str, hashes.HashAlgorithm] = {
        "256": hashes.SHA256(),
        "384": hashes.SHA384(),
        "512": hashes.SHA512(),
    }
    family = algorithm[:2]
    if family in ("RS", "PS"):
        if not isinstance(private, rsa.RSAPrivateKey):
            raise TypeError(f"{algorithm} needs an RSA private key")
        digest = hash_for[algorithm[2:]]
        pad: padding.AsymmetricPadding = (
            padding.PKCS1v15()
            if family == "RS"
            else padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
        )
        return private.sign(data, pad, digest)
    if family == "ES":
        curve, size = (ec.SECP256R1, 32) if algorithm == "ES256" else (ec.SECP384R1, 48)
        if not isinstance(private, ec.EllipticCurvePrivateKey) or not isinstance(
            private.curve, curve
        ):
            raise TypeError(f"{algorithm} needs an EC private key on {curve.name}")
        r, s = decode_dss_signature(private.sign(data, ec.ECDSA(hash_for[algorithm[2:]])))
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    if not isinstance(private, ed25519.Ed25519PrivateKey):
        raise TypeError("EdDSA needs an Ed25519 private key")
    return private.sign(data)


def _load_pem(key: str | bytes) -> Any:
    """A PEM private key (unencrypted)."""
    try:
        from cryptography.hazmat.primitives import serialization
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "asymmetric tokens need the 'cryptography' package:"
            " pip install 'switchboard-realtime[crypto]'"
        ) from exc
    data = key.encode("ascii") if isinstance(key, str) else key
    return serialization.load_pem_private_key(data, password=None)


class TokenSigner:
    """Mints tokens with fixed settings (key, algorithm, issuer, audience,
    lifetime), as a web app does for every login::

        signer = TokenSigner(os.environ["JWT_SECRET"], issuer="https://auth.example.com",
                             audience="chat")
        token = signer.mint(user.id, permissions=["chat:write"])

    The arguments are :func:`mint_token`'s.
    """

    def __init__(
        self,
        key: str | bytes | Any,
        *,
        algorithm: Algorithm = "HS256",
        issuer: str | None = None,
        audience: str | Sequence[str] | None = None,
        expires_in: Seconds = DEFAULT_EXPIRES_IN,
        kid: str | None = None,
        user_claim: str = "sub",
        permissions_claim: str = "permissions",
    ) -> None:
        # Parse a PEM key once, not at every mint.
        pem = algorithm not in _HMAC and isinstance(key, (str, bytes))
        self._key = _load_pem(key) if pem else key
        self.algorithm: Algorithm = algorithm
        self.issuer = issuer
        self.audience = audience
        self.expires_in = expires_in
        self.kid = kid
        self.user_claim = user_claim
        self.permissions_claim = permissions_claim
        # Fail now, not at the first login, on a short secret or a wrong key type.
        self.mint("check", expires_in=1)

    def __repr__(self) -> str:
        return f"TokenSigner(algorithm={self.algorithm!r}, issuer={self.issuer!r})"

    def mint(
        self,
        user: str | int,
        *,
        permissions: Sequence[str] | None = None,
        scope: str | Sequence[str] | None = None,
        admin: bool | None = None,
        expires_in: Seconds | None = None,
        not_before: Instant | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> str:
        """A token for ``user``."""
        return mint_token(
            self._key,
            user,
            expires_in=expires_in if expires_in is not None else self.expires_in,
            algorithm=self.algorithm,
            permissions=permissions,
            scope=scope,
            audience=self.audience,
            issuer=self.issuer,
            admin=admin,
            not_before=not_before,
            kid=self.kid,
            claims=claims,
            user_claim=self.user_claim,
            permissions_claim=self.permissions_claim,
        )
