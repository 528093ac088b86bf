"""The distribution: ``python -m build`` makes an sdist and a wheel; the
wheel installs into a fresh virtual environment and imports, with its type
information."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]


def test_wheel_builds_installs_and_imports(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(PACKAGE)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = dist.glob("switchboard_realtime-*.whl")
    (sdist,) = dist.glob("switchboard_realtime-*.tar.gz")
    assert sdist.stat().st_size > 0
    names = zipfile.ZipFile(wheel).namelist()
    assert "switchboard_rt/py.typed" in names
    assert "switchboard_rt/redis.py" in names
    # The append script ships with the package, byte for byte the gateway's.
    assert "switchboard_rt/scripts/append.lua" in names
    shipped = zipfile.ZipFile(wheel).read("switchboard_rt/scripts/append.lua")
    gateway = PACKAGE.parents[1] / "crates/switchboard-redis/src/scripts/append.lua"
    assert shipped == gateway.read_bytes()
    assert not [n for n in names if n.startswith("tests/")]

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    script = (
        "import switchboard_rt, switchboard_rt.tokens, switchboard_rt.proxy;"
        "import importlib.metadata as m;"
        "from switchboard_rt._wire_v1 import APPEND_SCRIPT; assert 'ARGV[9]' in APPEND_SCRIPT;"
        "from switchboard_rt import Client, Notification, mint_token;"
        "print(switchboard_rt.__version__, m.version('switchboard-realtime'));"
        "print(sorted(r.split(';')[0].strip() for r in m.requires('switchboard-realtime')"
        " if 'extra' not in r))"
    )
    out = subprocess.run(
        [str(python), "-c", script], check=True, capture_output=True, text=True, timeout=60
    ).stdout.split("\n")
    version, installed = out[0].split()
    assert version == installed
    assert out[1].startswith("['httpx")
    # Without the redis extra, switchboard_rt.redis says what is missing.
    missing = subprocess.run(
        [str(python), "-c", "import switchboard_rt.redis"], capture_output=True, text=True
    )
    assert missing.returncode != 0
    assert "pip install 'switchboard-realtime[redis]'" in missing.stderr
    # The proxy's core needs no framework; its integrations say which extra.
    assert "switchboard_rt/proxy.py" in names
    for module, extra in (("fastapi", "fastapi"), ("django", "django")):
        missing = subprocess.run(
            [str(python), "-c", f"import switchboard_rt.{module}"], capture_output=True, text=True
        )
        assert missing.returncode != 0
        assert f"pip install 'switchboard-realtime[{extra}]'" in missing.stderr
    proxy = subprocess.run(
        [str(python), "-c",
         "from switchboard_rt.proxy import Proxy, sign, verify_signature;"
         "p = Proxy('s'); b = b'{}';"
         "assert verify_signature('s', b, sign('s', b)); print(p)"],
        check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proxy.stdout.startswith("Proxy(verify_signature=True")
