"""The README's quick starts run as written (against the test gateway and
Redis: only the addresses change). The proxy quick starts are served as
written (uvicorn, Django's runserver) as the proxy backends of a gateway
configured with the README's own ``[proxy]`` blocks, and driven by a
WebSocket client through it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import JWT_SECRET, Cluster
from support import Gateway, Server, Ws, close_of, free_port, runserver_command, uvicorn_command

from switchboard_rt import mint_token

README = Path(__file__).resolve().parents[1] / "README.md"


def quick_start_section() -> str:
    return README.read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]


def quick_starts() -> list[str]:
    return re.findall(r"```python\n(.*?)```", quick_start_section(), flags=re.S)


def gateway_sides() -> list[str]:
    """The quick starts' ``[proxy]`` blocks: FastAPI's, then Django's."""
    return re.findall(r"```toml\n(.*?)```", quick_start_section(), flags=re.S)


def run(code: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_quick_starts_run(gateway: Gateway, cluster: Cluster) -> None:
    publish, worker, history, token, _, _ = quick_starts()
    run(publish, {"SWITCHBOARD_URL": gateway.url, "SWITCHBOARD_API_KEY": ""})
    run(worker.replace("redis://127.0.0.1:6379", cluster.redis.url), {})
    # The worker's publication is in public:builds's history, through the gateway.
    listed = run(history, {"SWITCHBOARD_URL": cluster.a.url, "SWITCHBOARD_API_KEY": ""})
    assert "Notification(title='Build', message='finished'" in listed
    run(token + "\nprint(token)", {"JWT_SECRET": JWT_SECRET})


PROXY_SECRET = "readme-proxy-secret-0123456789abcdef"
SRC = Path(__file__).resolve().parents[1] / "src"


def serve(
    tmp: Path, files: dict[str, str], command: list[str], port: int, env: dict[str, str]
) -> Server:
    for name, text in files.items():
        (tmp / name).write_text(text)
    return Server(
        command,
        port,
        cwd=tmp,
        env={
            "PYTHONPATH": os.pathsep.join([str(tmp), str(SRC)]),
            "SWITCHBOARD_PROXY_SECRET": PROXY_SECRET,
            **env,
        },
        log=tmp / "server.log",
    )


def proxy_gateway(tmp: Path, toml: str, port: int, head: str = "") -> Gateway:
    config = tmp / "switchboard.toml"
    config.write_text(head + toml.replace("127.0.0.1:8000", f"127.0.0.1:{port}"))
    return Gateway(
        ["--config", str(config)],
        env={"SWITCHBOARD_PROXY_SECRET": PROXY_SECRET, "SBPY_TEST_JWT_SECRET": JWT_SECRET},
        log_dir=tmp,
    )


async def act(ws: Ws, id: str, name: str, data: Any = None) -> dict[str, Any]:
    await ws.send({"type": "ACTION", "id": id, "payload": {"action": name, "data": data}})
    while True:
        reply = await ws.next_of("ACTION_RESULT", "ERROR")
        if reply.get("correlation_id") == id:
            return reply


@pytest.mark.anyio
async def test_the_fastapi_proxy_quick_start_serves_the_gateway(
    switchboard_bin: Path, tmp_path: Path
) -> None:
    pytest.importorskip("fastapi")
    app = quick_starts()[4]
    toml = gateway_sides()[0]
    port = free_port()
    gateway = proxy_gateway(tmp_path, toml, port)
    server = serve(tmp_path, {"app.py": app}, uvicorn_command("app:app", port), port, {})
    try:
        alice = await Ws.connect(gateway, headers={"Cookie": "session=s-alice"})
        assert alice.user == "alice", server.logs()
        reply = await act(alice, "1", "orders.create", {"item": "tea"})
        assert reply["type"] == "ACTION_RESULT", reply
        assert reply["payload"]["data"] == {"order_id": 17, "user": "alice", "item": "tea"}
        await alice.close()
        assert await close_of(gateway) == (1008, "Please sign in")
    finally:
        server.stop()
        gateway.stop()


DJANGO_SETTINGS = """
SECRET_KEY = "readme-test"
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "urls"
INSTALLED_APPS = []
MIDDLEWARE = ["django.middleware.csrf.CsrfViewMiddleware"]
DATABASES = {}
"""

JWT_HEAD = """
[security.jwt]

[[security.jwt.keys]]
algorithm = "HS256"
secret_env = "SBPY_TEST_JWT_SECRET"

"""


@pytest.mark.anyio
async def test_the_django_proxy_quick_start_serves_the_gateway(
    switchboard_bin: Path, tmp_path: Path
) -> None:
    pytest.importorskip("django")
    urls = quick_starts()[5]
    toml = gateway_sides()[1]
    port = free_port()
    gateway = proxy_gateway(tmp_path, toml, port, head=JWT_HEAD)
    server = serve(
        tmp_path,
        {"urls.py": urls, "settings.py": DJANGO_SETTINGS},
        runserver_command(port),
        port,
        {"DJANGO_SETTINGS_MODULE": "settings"},
    )
    try:
        alice = await Ws.connect(gateway, token=mint_token(JWT_SECRET, "alice"))
        assert alice.user == "alice"
        await alice.send(
            {"type": "SUBSCRIBE", "id": "s", "payload": {"subscriptions": ["team:red"]}}
        )
        assert (await alice.next_of("SUBSCRIBE_SUCCESS"))["payload"]["channel"] == "team:red"
        await alice.send(
            {"type": "SUBSCRIBE", "id": "t", "payload": {"subscriptions": ["team:blue"]}}
        )
        refused = await alice.next_of("SUBSCRIBE_FAILURE")
        assert refused["payload"]["code"] == "forbidden", server.logs()
        assert refused["payload"]["reason"] == "not your team"
        listed = await act(alice, "1", "orders.list")
        assert listed["payload"]["data"] == {"orders": [], "user": "alice"}
        unsupported = await act(alice, "2", "orders.delete")
        assert unsupported["type"] == "ERROR"
        assert unsupported["payload"]["code"] == "unsupported"
        await alice.close()
    finally:
        server.stop()
        gateway.stop()
