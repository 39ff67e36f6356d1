"""What the `hypercorn` CLI loads in the tests: `hypercorn tests.integration.cli_app:app`.

``ASGI_GRPC_TEST_STYLE`` picks the style (see echo_app), ``ASGI_GRPC_TEST_LIFESPAN_LOG`` names a
file that gets a line per lifespan event.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.integration.echo_app import Lifespan, build

_log = os.environ.get("ASGI_GRPC_TEST_LIFESPAN_LOG")
app = build(
    os.environ.get("ASGI_GRPC_TEST_STYLE", "fallback"),
    lifespan=Lifespan(Path(_log) if _log else None),
)
