"""The README's quick starts run as written (against the test gateway and
Redis: only the addresses change)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import JWT_SECRET, Cluster
from support import Gateway

README = Path(__file__).resolve().parents[1] / "README.md"


def quick_starts() -> list[str]:
    text = README.read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


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
    publish, worker, history, token = quick_starts()
    run(publish, {"SWITCHBOARD_URL": gateway.url, "SWITCHBOARD_API_KEY": ""})
    run(worker.replace("redis://127.0.0.1:6379", cluster.redis.url), {})
    # The worker's publication is in public:builds's history, through the gateway.
    listed = run(history, {"SWITCHBOARD_URL": cluster.a.url, "SWITCHBOARD_API_KEY": ""})
    assert "Notification(title='Build', message='finished'" in listed
    run(token + "\nprint(token)", {"JWT_SECRET": JWT_SECRET})
