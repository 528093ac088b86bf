#!/usr/bin/env python3
"""Publishes per second from one Python process: switchboard_rt against a
plain loop on the same transport (httpx for the HTTP API, redis-py for
Redis), sync and async.

Starts its own redis-server and gateway (release build) on free loopback
ports; the gateway uses the in-memory broker unless ``--broker redis``. Each
publish is an EVENT to a room without members and without history (no
stream append, no idempotency key: the plain loops have neither), so the
numbers measure the publisher and the gateway's API, not fan-out or streams. Every scenario runs
``--seconds`` per round, rounds interleaved, ``--rounds`` times; the median
is reported, with the median of the per-round ratios (switchboard_rt /
plain), which drifts less than the rates on a busy machine. The plain HTTP
loop is ``httpx.Client.post(url, json=body)``; the plain Redis loop builds
the same protocol envelope by hand and calls ``redis.Redis.publish``.

    python bench/publish_rate.py --bin target/release/switchboard
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import redis
import redis.asyncio as aredis

from switchboard_rt import AsyncClient, Client, Event, Retry
from switchboard_rt.redis import AsyncRedisPublisher, RedisPublisher

REPO = Path(__file__).resolve().parents[3]
ROOM = "bench"
"""A room no history rule matches (the gateway's defaults are public:* and user:*)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_redis() -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not on PATH")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.02)
    client.close()
    return process, f"redis://127.0.0.1:{port}"


def start_gateway(binary: str, broker: str, redis_url: str) -> tuple[subprocess.Popen[bytes], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    args = [binary, "serve", "--listen", "127.0.0.1:0", "--log-level", "warn"]
    if broker == "redis":
        args += ["--broker", "redis"]
        env["SWITCHBOARD_BROKER_URL"] = redis_url
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    assert process.stdout is not None
    line = process.stdout.readline().decode().strip()
    if not line.startswith("listening on ws://"):
        sys.exit(f"the gateway did not start: {line!r}")
    return process, line.replace("listening on ws://", "http://")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        process.wait(15)


def body(i: int) -> dict[str, Any]:
    return {
        "target": {"room": ROOM},
        "message": {"type": "EVENT", "event": "bench", "data": {"i": i}},
    }


def redis_envelope(i: int) -> str:
    """What the Redis publisher sends, built by hand."""
    wire = {
        "type": "EVENT",
        "id": str(uuid.uuid4()),
        "timestamp": time.time(),
        "payload": {"event": "bench", "data": {"i": i}, "channel": ROOM},
    }
    return json.dumps({"v": 1, "kind": "text", "data": json.dumps(wire)})


def run_sync(step: Callable[[int], object], seconds: float) -> float:
    step(0)  # warm up: connect
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        for _ in range(50):
            step(count)
            count += 1
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - started)


async def run_async(
    step: Callable[[int], Awaitable[object]], seconds: float, inflight: int
) -> float:
    await step(0)
    count = 0
    started = time.perf_counter()
    deadline = started + seconds

    async def worker() -> None:
        nonlocal count
        while time.perf_counter() < deadline:
            i = count
            count += 1
            await step(i)

    await asyncio.gather(*(worker() for _ in range(inflight)))
    return count / (time.perf_counter() - started)


Scenario = Callable[[], float]


def scenarios(
    url: str, redis_url: str, seconds: float, inflight: int
) -> list[tuple[str, Scenario, Scenario]]:
    channel = f"sb:v1:room:{ROOM}"

    def http_sync_plain() -> float:
        with httpx.Client() as http:
            target = url + "/api/v1/publish"
            return run_sync(lambda i: http.post(target, json=body(i)).raise_for_status(), seconds)

    def http_sync_client() -> float:
        with Client(url, api_key="", retry=Retry(), idempotency="off") as client:
            return run_sync(lambda i: client.publish(Event("bench", {"i": i}), room=ROOM), seconds)

    def http_async(inflight: int, ours: bool) -> Scenario:
        async def plain() -> float:
            limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
            async with httpx.AsyncClient(limits=limits) as http:
                target = url + "/api/v1/publish"

                async def step(i: int) -> None:
                    (await http.post(target, json=body(i))).raise_for_status()

                return await run_async(step, seconds, inflight)

        async def client() -> float:
            async with AsyncClient(url, api_key="", idempotency="off") as c:

                async def step(i: int) -> None:
                    await c.publish(Event("bench", {"i": i}), room=ROOM)

                return await run_async(step, seconds, inflight)

        return lambda: asyncio.run(client() if ours else plain())

    def redis_sync_plain() -> float:
        r = redis.Redis.from_url(redis_url)
        try:
            return run_sync(lambda i: r.publish(channel, redis_envelope(i)), seconds)
        finally:
            r.close()

    def redis_sync_client() -> float:
        with RedisPublisher.from_url(redis_url) as p:
            return run_sync(lambda i: p.publish(Event("bench", {"i": i}), room=ROOM), seconds)

    def redis_async(ours: bool) -> Scenario:
        async def plain() -> float:
            r = aredis.Redis.from_url(redis_url)
            try:

                async def step(i: int) -> None:
                    await r.publish(channel, redis_envelope(i))

                return await run_async(step, seconds, inflight)
            finally:
                await r.aclose()

        async def client() -> float:
            async with AsyncRedisPublisher.from_url(redis_url) as p:

                async def step(i: int) -> None:
                    await p.publish(Event("bench", {"i": i}), room=ROOM)

                return await run_async(step, seconds, inflight)

        return lambda: asyncio.run(client() if ours else plain())

    return [
        ("HTTP, sync", http_sync_plain, http_sync_client),
        ("HTTP, async, 1 in flight", http_async(1, False), http_async(1, True)),
        (
            f"HTTP, async, {inflight} in flight",
            http_async(inflight, False),
            http_async(inflight, True),
        ),
        ("Redis, sync", redis_sync_plain, redis_sync_client),
        (f"Redis, async, {inflight} in flight", redis_async(False), redis_async(True)),
    ]


def client_cost(iterations: int) -> list[tuple[str, float, float]]:
    """Microseconds of client-side work per publish, without a network: the
    same loops against httpx.MockTransport and a Redis stand-in that answers
    at once. Steadier than the rates on a busy machine."""

    def answer(_: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            content=b'{"local":0,"forwarded":true,"id":"x"}',
            headers={"content-type": "application/json"},
        )

    class NoRedis:
        def publish(self, channel: str, message: str) -> int:
            return 0

    mock = httpx.MockTransport(answer)
    plain_http = httpx.Client(transport=mock)
    ours_http = Client("http://gateway.test", transport=mock, idempotency="off")
    no_redis = NoRedis()
    ours_redis = RedisPublisher(no_redis, prefix="sb")  # type: ignore[arg-type]
    channel = f"sb:v1:room:{ROOM}"
    target = "http://gateway.test/api/v1/publish"

    def per_call(step: Callable[[int], object]) -> float:
        started = time.perf_counter()
        for i in range(iterations):
            step(i)
        return (time.perf_counter() - started) / iterations * 1e6

    pairs: list[tuple[str, Callable[[int], object], Callable[[int], object]]] = [
        (
            "HTTP, sync",
            lambda i: plain_http.post(target, json=body(i)).json(),
            lambda i: ours_http.publish(Event("bench", {"i": i}), room=ROOM),
        ),
        (
            "Redis, sync",
            lambda i: no_redis.publish(channel, redis_envelope(i)),
            lambda i: ours_redis.publish(Event("bench", {"i": i}), room=ROOM),
        ),
    ]
    results = []
    for name, plain, ours in pairs:
        rounds = [(per_call(plain), per_call(ours)) for _ in range(5)]
        # The least time is the best estimate of the work itself: noise only adds.
        results.append((name, min(r[0] for r in rounds), min(r[1] for r in rounds)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--bin",
        default=os.environ.get("SWITCHBOARD_BIN") or str(REPO / "target/release/switchboard"),
    )
    parser.add_argument("--broker", choices=["memory", "redis"], default="memory")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--inflight", type=int, default=16)
    parser.add_argument("--only", help="run scenarios whose name contains this")
    parser.add_argument("--cost-iterations", type=int, default=20_000)
    args = parser.parse_args()

    redis_process, redis_url = start_redis()
    gateway, url = start_gateway(args.bin, args.broker, redis_url)
    try:
        chosen = [
            pair
            for pair in scenarios(url, redis_url, args.seconds, args.inflight)
            if not args.only or args.only in pair[0]
        ]
        plain: dict[str, list[float]] = {name: [] for name, _, _ in chosen}
        ours: dict[str, list[float]] = {name: [] for name, _, _ in chosen}
        for round_ in range(args.rounds):
            for name, run_plain, run_ours in chosen:
                # Alternate which goes first, so drift does not favour either.
                if round_ % 2 == 0:
                    plain[name].append(run_plain())
                    ours[name].append(run_ours())
                else:
                    ours[name].append(run_ours())
                    plain[name].append(run_plain())
                print(
                    f"round {round_ + 1}: {name}: plain {plain[name][-1]:,.0f}/s,"
                    f" switchboard_rt {ours[name][-1]:,.0f}/s",
                    file=sys.stderr,
                )
        print(
            f"\npublishes/s, median of {args.rounds} rounds x {args.seconds:g} s (the plain loop"
            " and switchboard_rt back to back, alternating which goes first);"
            f" gateway broker {args.broker};"
            f" Python {platform.python_version()}, httpx {httpx.__version__},"
            f" redis-py {redis.__version__}; {os.cpu_count()} CPUs;"
            f" load average {os.getloadavg()[0]:.1f}\n"
        )
        print("| publisher | plain loop | switchboard_rt | ratio (median of rounds) |")
        print("|---|---:|---:|---:|")
        for name, _, _ in chosen:
            ratio = statistics.median(o / p for o, p in zip(ours[name], plain[name], strict=True))
            print(
                f"| {name} | {statistics.median(plain[name]):,.0f} |"
                f" {statistics.median(ours[name]):,.0f} | {ratio:.2f} |"
            )
        print(
            "\nclient-side work per publish, without a network (microseconds, least of 5 x"
            f" {args.cost_iterations:,}):\n"
        )
        print("| publisher | plain loop | switchboard_rt |")
        print("|---|---:|---:|")
        for name, plain_us, ours_us in client_cost(args.cost_iterations):
            print(f"| {name} | {plain_us:.1f} | {ours_us:.1f} |")
    finally:
        stop(gateway)
        stop(redis_process)


if __name__ == "__main__":
    main()
