"""The uvloop extra: asgi_grpc's own loops (the blocking API's loop thread, ``asgi-grpc serve``)
run on uvloop when it is installed, unless ``ASGI_GRPC_UVLOOP=0``; the caller's loop policy is
never changed. Each case in a fresh interpreter, as a user's process would be."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("uvloop") is None, reason="uvloop not installed (the uvloop extra)"
)

PROBE = """
import asyncio
import asgi_grpc
from asgi_grpc._sync import _loop
from asgi_grpc.cli import _serve

policy = type(asyncio.get_event_loop_policy()).__module__
channel = asgi_grpc.insecure_channel("127.0.0.1:1")  # starts the loop thread; never connects
print(type(_loop.BackgroundLoop().loop).__module__.split(".")[0], _serve.use_uvloop(), policy)
channel.close()
"""


def probe(value: str | None) -> list[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("ASGI_GRPC_UVLOOP", None)
    if value is not None:
        env["ASGI_GRPC_UVLOOP"] = value
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_uvloop_used_when_installed() -> None:
    loop_module, serve, policy = probe(None)
    assert loop_module == "uvloop"
    assert serve == "True"
    # The user's event loop policy is left alone.
    assert policy.startswith("asyncio")


@pytest.mark.parametrize("value", ["0", "off"])
def test_env_turns_it_off(value: str) -> None:
    loop_module, serve, policy = probe(value)
    assert loop_module == "asyncio"
    assert serve == "False"
    assert policy.startswith("asyncio")
