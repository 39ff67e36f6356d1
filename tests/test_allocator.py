"""glibc's thresholds, raised by the first GrpcApp and by every channel: large messages stop
costing page faults, on the server and on the client.

Each run is a fresh interpreter (mallopt is process-wide). The pattern is a big call's: a few
1 MiB buffers live at once, all freed, then again. With glibc's defaults the freed top of the
heap is returned at once and faulted in again on the next round; tuned, it is reused.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from asgi_grpc import _allocator

pytestmark = pytest.mark.skipif(_allocator._mallopt is None, reason="needs glibc's mallopt")

# What tunes the allocator: the server's app, or a channel (made without connecting).
_SETUPS = {
    "server": "from asgi_grpc.server import GrpcApp\nGrpcApp()\n",
    "client": "import asgi_grpc.aio\nasgi_grpc.aio.insecure_channel('localhost:1')\n",
}
_SCRIPT = """
import resource
def rounds(n):
    for _ in range(n):
        held = [bytes(1024 * 1024) for _ in range(6)]
        del held
rounds(3)  # warm up
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
rounds(20)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(setup: str, **env: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _SETUPS[setup] + _SCRIPT],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return int(out.stdout.split()[-1])


@pytest.mark.parametrize("setup", sorted(_SETUPS))
def test_large_buffers_are_reused_not_faulted_in_again(setup: str) -> None:
    # Measured: 0 tuned; 3,440 untuned (glibc maps some of the buffers, and returns the top
    # of its heap, in every round).
    assert _faults(setup) < 300
    assert _faults(setup, ASGI_GRPC_MALLOPT="0") > 2_000  # the same script does fault untuned


def test_tune_allocator_is_idempotent() -> None:
    assert _allocator.tune_allocator() is _allocator.tune_allocator()
