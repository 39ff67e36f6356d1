"""``python -m tests.client_transport.echo_server_process``: the echo server in its own
process (so a test can kill it), printing ``{"port": N}`` once it serves."""

from __future__ import annotations

import asyncio
import json

from .support import start_echo_server


async def main() -> None:
    server, port, _ = await start_echo_server("127.0.0.1:0")
    print(json.dumps({"port": port}), flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(main())
