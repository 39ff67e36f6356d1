"""``asgi_grpc_base``: asgi_grpc as another commit has it, as a server and a client of its own, so
one run interleaves the code before and after a change (bench/README.md, "What bought what").
Never picked by ``auto``: name it in ``--pairs``, ``--servers`` or ``--clients``.

``ASGI_GRPC_BASELINE`` names a directory that holds an ``asgi_grpc`` package::

    base=$(mktemp -d) && git archive HEAD~1 asgi_grpc | tar -x -C "$base"
    ASGI_GRPC_BASELINE=$base python -m bench \\
        --pairs asgi_grpc_base:asgi_grpc_base,asgi_grpc:asgi_grpc --workloads unary_64
"""

from __future__ import annotations

import os
import sys

ENV = "ASGI_GRPC_BASELINE"


def use() -> None:
    """Put the baseline first on ``sys.path``; call before anything imports asgi_grpc."""
    path = os.environ.get(ENV)
    if not path or not os.path.isdir(os.path.join(path, "asgi_grpc")):
        raise RuntimeError(f"asgi_grpc_base needs {ENV}=<a directory holding an asgi_grpc package>")
    if "asgi_grpc" in sys.modules:
        raise RuntimeError("asgi_grpc is already imported: the baseline cannot replace it")
    sys.path.insert(0, os.path.abspath(path))
