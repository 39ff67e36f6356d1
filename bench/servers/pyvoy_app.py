"""The echo GrpcApp inside Envoy (pyvoy imports ``bench.servers.pyvoy_app:app``); the generated
modules' directory comes from the bench server process through the environment."""

from __future__ import annotations

import os
from pathlib import Path

from asgi_grpc.cli._servers import PyvoyAdapter
from bench.servers.asgi_servers import GEN_DIR_ENV, echo_app

app = PyvoyAdapter(echo_app(Path(os.environ[GEN_DIR_ENV])))
