"""Runs the real gateway binary and a real redis-server on free loopback
ports, and speaks the structured protocol (docs/protocol.md) over a real
WebSocket. Every process is stopped by its PID."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import websockets.asyncio.client as ws_client
from websockets.exceptions import ConnectionClosed

REPO = Path(__file__).resolve().parents[3]
START_TIMEOUT = 30.0


def under_ci() -> bool:
    return os.environ.get("CI", "") not in ("", "0", "false", "False")


def loud_skip(message: str) -> None:
    """Skips loudly; under CI (``CI`` set) fails instead."""
    bar = "!" * 78
    sys.stderr.write(f"\n{bar}\n!! SKIPPED: {message}\n{bar}\n")
    if under_ci():
        pytest.fail(f"{message} (CI is set: this fails the run instead of skipping)")
    pytest.skip(f"SKIPPED (loudly): {message}")


def gateway_bin() -> Path:
    return Path(os.environ.get("SWITCHBOARD_BIN") or REPO / "target/release/switchboard")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment without SWITCHBOARD_* (so the caller's settings do
    not leak into the gateway), plus ``extra``."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_") and k != "RUST_LOG"
    }
    env.update(extra or {})
    return env


class Gateway:
    """``switchboard serve --listen 127.0.0.1:0 <args>``; its URL is read from
    the ``listening on ws://...`` line it prints."""

    def __init__(
        self,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        log_dir: Path | None = None,
    ) -> None:
        binary = gateway_bin()
        self.log_path = (log_dir or Path("/tmp")) / f"switchboard-{os.getpid()}-{id(self)}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [str(binary), "serve", "--listen", "127.0.0.1:0", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=clean_env(env),
        )
        found: list[str] = []
        ready = threading.Event()

        def pump() -> None:
            assert self.process.stdout is not None
            for raw in self.process.stdout:
                line = raw.decode("utf-8", "replace").strip()
                if line.startswith("listening on ") and not found:
                    found.append(line[len("listening on ") :])
                    ready.set()
            ready.set()

        self._pump = threading.Thread(target=pump, daemon=True)
        self._pump.start()
        if not ready.wait(START_TIMEOUT) or not found:
            self.stop()
            raise RuntimeError(f"the gateway did not start:\n{self.logs()}")
        self.ws_url = found[0]
        self.url = self.ws_url.replace("ws://", "http://", 1)
        self.port = int(self.ws_url.rsplit(":", 1)[1])

    @property
    def pid(self) -> int:
        return self.process.pid

    def logs(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self._log.close()


def redis_server_bin() -> str | None:
    return shutil.which("redis-server")


class RedisServer:
    """A throwaway ``redis-server`` on a free port (no persistence; with
    ``directory``, ``SAVE`` writes a snapshot there that a restart loads)."""

    def __init__(self, port: int | None = None, directory: Path | None = None) -> None:
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        binary = redis_server_bin()
        assert binary is not None
        deadline = time.monotonic() + 10
        while True:
            where = ["--dir", str(self.directory)] if self.directory is not None else []
            self.process = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--protected-mode", "no", *where],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            if self._wait_ready(deadline):
                return
            self.kill()
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.2)  # the port may still be held right after a kill

    def _wait_ready(self, deadline: float) -> bool:
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s,
            ):
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return True
            time.sleep(0.05)
        return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

    def subscribers(self, channel: str) -> int:
        """``PUBSUB NUMSUB``: how many instances listen to ``channel``."""
        import redis

        client = redis.Redis(port=self.port, socket_timeout=2)
        try:
            return int(dict(client.pubsub_numsub(channel)).get(channel.encode(), 0))
        finally:
            client.close()

    def wait_subscribed(self, channel: str, count: int = 1, timeout: float = 5.0) -> None:
        """Until ``count`` instances subscribe to ``channel`` (subscriptions
        follow joins asynchronously)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.subscribers(channel) >= count:
                return
            time.sleep(0.02)
        raise AssertionError(f"no instance subscribed to {channel} within {timeout}s")


SERVER_TYPES = {"EVENT", "DATA", "NOTIFICATION"}
PRESENCE_EVENTS = {"switchboard.join", "switchboard.leave"}


class Ws:
    """A structured-protocol client over a real WebSocket (``websockets``)."""

    def __init__(self, connection: ws_client.ClientConnection, ack: dict[str, Any]) -> None:
        self.connection = connection
        self.ack = ack
        self.id: str = ack["payload"]["connection_id"]
        self.user: str | None = ack["payload"]["user_id"]
        # The gateway's connection_id is the cluster address, instance/42.
        self.local_id = int(self.id.rsplit("/", 1)[-1])
        self._pending: list[dict[str, Any]] = []

    @classmethod
    async def connect(
        cls,
        gateway: Gateway,
        path: str = "/ws",
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Ws:
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"Bearer {token}"
        connection = await ws_client.connect(
            gateway.ws_url + path, additional_headers=sent or None, open_timeout=10
        )
        ack = json.loads(await asyncio.wait_for(connection.recv(), 10))
        assert ack["type"] == "CONNECT_ACK", ack
        return cls(connection, ack)

    async def send(self, message: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(message))

    async def next_of(self, *types: str, timeout: float = 10.0) -> dict[str, Any]:
        """The next message of one of ``types`` (others are kept for
        :meth:`receive`)."""
        deadline = time.monotonic() + timeout
        while True:
            message = await self._next(max(0.01, deadline - time.monotonic()))
            if message.get("type") in types:
                return message
            self._pending.append(message)

    async def close(self) -> None:
        await self.connection.close()

    async def _next(self, timeout: float) -> dict[str, Any]:
        while True:
            raw = await asyncio.wait_for(self.connection.recv(), timeout)
            message: dict[str, Any] = json.loads(raw)
            if message.get("type") == "PING":
                await self.connection.send(
                    json.dumps({"type": "PONG", "correlation_id": message.get("id")})
                )
                continue
            return message

    async def subscribe_with(
        self, channel: str, *, recover: tuple[str, int] | None = None, last: int | None = None
    ) -> dict[str, Any]:
        """Subscribes to one channel, recovering from ``(epoch, offset)`` or
        asking for the ``last`` publications; returns ``SUBSCRIBE_SUCCESS``'s
        payload (``epoch``, ``offset``, ``recovered``, ``reason``)."""
        subscription: dict[str, Any] = {"channel": channel}
        if recover is not None:
            subscription["recover"] = {"epoch": recover[0], "offset": recover[1]}
        if last is not None:
            subscription["last"] = last
        await self.connection.send(
            json.dumps(
                {"type": "SUBSCRIBE", "id": "sub-2", "payload": {"subscriptions": [subscription]}}
            )
        )
        while True:
            message = await self._next(10)
            if message["type"] == "SUBSCRIBE_SUCCESS":
                payload: dict[str, Any] = message["payload"]
                return payload
            if message["type"] in ("SUBSCRIBE_FAILURE", "ERROR"):
                raise AssertionError(f"subscribe failed: {message}")
            self._pending.append(message)

    async def subscribe(self, *channels: str) -> None:
        await self.connection.send(
            json.dumps({"type": "SUBSCRIBE", "id": "sub-1", "payload": {"subscriptions": channels}})
        )
        waiting = set(channels)
        while waiting:
            message = await self._next(10)
            if message["type"] == "SUBSCRIBE_SUCCESS":
                waiting.discard(message["payload"]["channel"])
            elif message["type"] == "SUBSCRIBE_FAILURE":
                raise AssertionError(f"subscribe failed: {message}")
            else:
                self._pending.append(message)

    async def receive(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next EVENT, DATA or NOTIFICATION, past presence events (the
        gateway's `[presence]` sends `switchboard.join` and `switchboard.leave`
        on `public:*` by default; these tests look at publications)."""
        while True:
            if self._pending:
                message = self._pending.pop(0)
            else:
                message = await self._next(timeout)
            event = (message.get("payload") or {}).get("event")
            if message.get("type") in SERVER_TYPES and event not in PRESENCE_EVENTS:
                return message

    async def expect_nothing(self, within: float = 0.3) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            message = await self.receive(within)
            raise AssertionError(f"unexpected message: {message}")

    async def closed(self, timeout: float = 5.0) -> tuple[int | None, str]:
        """Waits for the server's close; returns its code and reason."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                await self._next(max(0.01, deadline - time.monotonic()))
        except ConnectionClosed as exc:
            if exc.rcvd is None:
                return None, ""
            return exc.rcvd.code, exc.rcvd.reason
        raise AssertionError("the connection was not closed")


async def raw_connect(gateway: Gateway, path: str) -> ws_client.ClientConnection:
    return await ws_client.connect(gateway.ws_url + path, open_timeout=10)


class LossyProxy:
    """A TCP proxy to the gateway that loses the answers to the first
    ``lose`` ``POST /api/v1/publish`` requests: the gateway gets the request
    and answers, and the client sees the connection drop instead (as when a
    network fails after the request went out)."""

    def __init__(self, gateway: Gateway, lose: int = 1) -> None:
        self.upstream = ("127.0.0.1", gateway.port)
        self.lose = lose
        self.lost = 0
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self.upstream)
        publishing = threading.Event()

        def forward() -> None:
            with contextlib.suppress(OSError):
                while data := client.recv(65536):
                    if data.startswith(b"POST /api/v1/publish "):
                        publishing.set()
                    upstream.sendall(data)
            with contextlib.suppress(OSError):
                upstream.shutdown(socket.SHUT_WR)

        threading.Thread(target=forward, daemon=True).start()
        with contextlib.suppress(OSError):
            while data := upstream.recv(65536):
                if publishing.is_set():
                    publishing.clear()
                    with self._lock:
                        lose = self.lost < self.lose
                        if lose:
                            self.lost += 1
                    if lose:
                        break  # the gateway answered; the client never hears it
                client.sendall(data)
        for s in (client, upstream):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.listener.close()


class Server:
    """A Python web server (uvicorn, Django's runserver) in a subprocess,
    waited for on its port, logging to ``log``; stopped by its PID."""

    def __init__(
        self,
        command: Sequence[str],
        port: int,
        *,
        cwd: Path,
        env: Mapping[str, str],
        log: Path,
    ) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                list(command),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=clean_env(env),
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited:\n{self.logs()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server did not listen on {port}:\n{self.logs()}")
            time.sleep(0.05)

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


def uvicorn_command(app: str, port: int) -> list[str]:
    return [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning"]  # fmt: skip


def runserver_command(port: int) -> list[str]:
    """Django's development server (threaded WSGI), ``$DJANGO_SETTINGS_MODULE``."""
    return [sys.executable, "-m", "django", "runserver", f"127.0.0.1:{port}", "--noreload"]


async def close_of(
    gateway: Gateway, path: str = "/ws", headers: Mapping[str, str] | None = None
) -> tuple[int | None, str]:
    """Opens a WebSocket and returns the close code and reason the gateway
    ends it with (``None``: no close frame)."""
    async with ws_client.connect(
        gateway.ws_url + path, additional_headers=headers, open_timeout=10
    ) as connection:
        try:
            while True:
                await asyncio.wait_for(connection.recv(), 10)
        except ConnectionClosed as exc:
            if exc.rcvd is None:
                return None, ""
            return exc.rcvd.code, exc.rcvd.reason
