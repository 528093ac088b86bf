"""Fixtures: the real gateway (``$SWITCHBOARD_BIN``, default
``<repo>/target/release/switchboard``) and a real ``redis-server``, each on a
free loopback port. Missing ones skip loudly, and fail under ``CI``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from support import Gateway, RedisServer, gateway_bin, loud_skip, redis_server_bin

API_KEY = "test-api-key-0123456789abcdef"
JWT_SECRET = "a-test-secret-of-at-least-32-bytes-0123456789"


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def switchboard_bin() -> Path:
    binary = gateway_bin()
    if not binary.is_file():
        loud_skip(
            f"no gateway binary at {binary}: build it with"
            " `cargo build --release -p switchboard-gateway`, or set SWITCHBOARD_BIN"
        )
    return binary


@pytest.fixture(scope="session")
def redis_bin() -> str:
    binary = redis_server_bin()
    if binary is None:
        loud_skip("redis-server is not on PATH (apt-get install redis-server)")
    assert binary is not None
    return binary


@dataclass
class Keys:
    """Private keys for minting, and the public PEM files the gateway reads."""

    rsa: rsa.RSAPrivateKey
    ec256: ec.EllipticCurvePrivateKey
    ed: ed25519.Ed25519PrivateKey
    files: dict[str, Path]


def _public_pem(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey,
) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    directory = tmp_path_factory.mktemp("keys")
    private = Keys(
        rsa=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ec256=ec.generate_private_key(ec.SECP256R1()),
        ed=ed25519.Ed25519PrivateKey.generate(),
        files={},
    )
    for name, key in (("rsa", private.rsa), ("ec256", private.ec256), ("ed", private.ed)):
        path = directory / f"{name}.pub.pem"
        path.write_bytes(_public_pem(key))
        private.files[name] = path
    return private


def jwt_config(keys: Keys, extra: str = "", tail: str = "") -> str:
    """Anonymous clients allowed; tokens checked with an HS256 secret and an
    RS256, PS256, ES256 and EdDSA public key."""
    return f"""
[security.jwt]
{extra}

[[security.jwt.keys]]
algorithm = "HS256"
secret_env = "SBPY_TEST_JWT_SECRET"

[[security.jwt.keys]]
algorithm = "RS256"
public_key_file = "{keys.files["rsa"]}"

[[security.jwt.keys]]
algorithm = "PS256"
public_key_file = "{keys.files["rsa"]}"

[[security.jwt.keys]]
algorithm = "ES256"
public_key_file = "{keys.files["ec256"]}"

[[security.jwt.keys]]
algorithm = "EdDSA"
public_key_file = "{keys.files["ed"]}"
{tail}
"""


def start_gateway(
    tmp: Path,
    keys: Keys,
    args: list[str] | None = None,
    env: dict[str, str] | None = None,
    jwt_extra: str = "",
    config_tail: str = "",
) -> Gateway:
    config = tmp / f"switchboard-{len(list(tmp.iterdir()))}.toml"
    config.write_text(jwt_config(keys, jwt_extra, config_tail))
    return Gateway(
        ["--config", str(config), *(args or [])],
        env={"SBPY_TEST_JWT_SECRET": JWT_SECRET, **(env or {})},
        log_dir=tmp,
    )


@pytest.fixture(scope="session")
def gateway(
    switchboard_bin: Path, keys: Keys, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """One gateway on the in-memory broker, without an API key."""
    gw = start_gateway(tmp_path_factory.mktemp("gateway"), keys)
    yield gw
    gw.stop()


@pytest.fixture(scope="session")
def keyed_gateway(
    switchboard_bin: Path, keys: Keys, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """A gateway whose API needs ``API_KEY``."""
    gw = start_gateway(tmp_path_factory.mktemp("keyed"), keys, env={"SWITCHBOARD_API_KEY": API_KEY})
    yield gw
    gw.stop()


@pytest.fixture(scope="session")
def redis_server(redis_bin: str) -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.kill()


@dataclass
class Cluster:
    redis: RedisServer
    a: Gateway
    b: Gateway


@pytest.fixture(scope="session")
def cluster(
    switchboard_bin: Path,
    redis_server: RedisServer,
    keys: Keys,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    """Two gateways (instances ``gw-a`` and ``gw-b``) sharing one Redis."""
    tmp = tmp_path_factory.mktemp("cluster")
    gateways = [
        start_gateway(
            tmp,
            keys,
            ["--broker", "redis", "--instance-id", name],
            env={"SWITCHBOARD_BROKER_URL": redis_server.url},
        )
        for name in ("gw-a", "gw-b")
    ]
    yield Cluster(redis_server, gateways[0], gateways[1])
    for gw in gateways:
        gw.stop()
