"""``python -m tests.client.server_process grpcio|asgi_grpc``: the client tests' echo server
in its own process, printing ``{"port": N}`` once it serves (so a test can kill it)."""

from __future__ import annotations

import asyncio
import json
import sys

from .conftest import aio_server
from .servicer import ClientEcho, pb2_grpc


async def main(impl: str) -> None:
    server = aio_server(impl)
    pb2_grpc.add_EchoServicer_to_server(ClientEcho(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(json.dumps({"port": port}), flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
