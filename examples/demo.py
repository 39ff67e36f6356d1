"""REST and gRPC on one port: one ASGI app, one Hypercorn, one socket.

    ./scripts/demo              # or: python examples/demo.py [--port N] [--serve]

The app is a Starlette app (``GET /health``) wrapped by :class:`asgi_grpc.server.GrpcApp`, which
sends ``content-type: application/grpc*`` requests to the registered servicers and everything else
(and the lifespan) to Starlette. Hypercorn serves it in-process over HTTP/1.1 and cleartext
HTTP/2 (h2c, what gRPC's insecure channels speak). The demo then calls the REST route with httpx
and the gRPC service with a gRPC client, prints what came back, shuts the server down, exits 0.

The proto is compiled at run time with grpcio-tools into a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import socket
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
from grpc_tools import protoc
from hypercorn.asyncio import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

# The client is asgi_grpc's own, with grpc.aio's API: `import grpc.aio as client_aio` would run
# the same calls on grpcio.
import asgi_grpc.aio as client_aio
from asgi_grpc.server import GrpcApp, grpc_config

HERE = Path(__file__).resolve().parent


def compile_protos(out: Path) -> tuple[ModuleType, ModuleType]:
    """Compile greeter.proto into ``out`` and import ``greeter_pb2`` / ``greeter_pb2_grpc``."""
    well_known = Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{HERE}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        str(HERE / "greeter.proto"),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed on examples/greeter.proto")
    sys.path.insert(0, str(out))
    return importlib.import_module("greeter_pb2"), importlib.import_module("greeter_pb2_grpc")


def build_app(pb2: Any, pb2_grpc: Any) -> GrpcApp:
    """One ASGI app: gRPC for the Greeter service, Starlette for everything else."""

    class Greeter(pb2_grpc.GreeterServicer):  # type: ignore[misc]
        async def SayHello(self, request: Any, context: Any) -> Any:
            return pb2.HelloReply(message=f"Hello, {request.name}!")

        async def SayHelloStream(self, request: Any, context: Any) -> Any:
            for i in range(request.count):
                yield pb2.HelloReply(message=f"Hello #{i + 1}, {request.name}!")

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "http_version": request.scope["http_version"]})

    rest = Starlette(routes=[Route("/health", health)])
    # Plain ASGI content-type dispatch. (Starlette's BaseHTTPMiddleware would drop the gRPC
    # trailers; `Mount("/demo.Greeter", app=grpc_app)` inside Starlette's routes works too.)
    app = GrpcApp(fallback=rest)
    pb2_grpc.add_GreeterServicer_to_server(Greeter(), app)
    return app


async def call_rest(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as http:  # HTTP/1.1
        response = await http.get("/health")
        response.raise_for_status()
        print(f"REST  GET /health -> {response.status_code} {response.json()}")


async def call_grpc(target: str, pb2: Any, pb2_grpc: Any) -> None:
    async with client_aio.insecure_channel(target) as channel:
        stub = pb2_grpc.GreeterStub(channel)
        reply = await stub.SayHello(pb2.HelloRequest(name="asgi_grpc"), timeout=10)
        print(f"gRPC  SayHello -> {reply.message!r}")
        stream = stub.SayHelloStream(pb2.HelloRequest(name="stream", count=3), timeout=10)
        replies = [reply.message async for reply in stream]
        print(f"gRPC  SayHelloStream -> {replies}")


async def main(port: int, keep_serving: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="asgi_grpc_demo_") as out:
        pb2, pb2_grpc = compile_protos(Path(out))
    app = build_app(pb2, pb2_grpc)

    # Bind the socket here so the port is known before Hypercorn starts (port 0: any free one),
    # and listen at once so early connections wait in the backlog instead of being refused.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    port = sock.getsockname()[1]

    # Hypercorn settings fit for gRPC (no date/server headers, no per-connection request cap...);
    # Hypercorn takes ownership of the socket through fd://. (GrpcApp has already installed
    # asgi_grpc's HTTP/2 fixes into Hypercorn: see asgi_grpc/server/_hypercorn_install.py.)
    config = grpc_config(bind=[f"fd://{sock.detach()}"], graceful_timeout=5.0)
    stop = asyncio.Event()
    server = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    print(f"serving REST and gRPC on 127.0.0.1:{port}")
    try:
        await call_rest(f"http://127.0.0.1:{port}")
        await call_grpc(f"127.0.0.1:{port}", pb2, pb2_grpc)
        if keep_serving:
            print("serving until Ctrl+C")
            await asyncio.Future()
    finally:
        stop.set()
        await server
    print("server stopped")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    parser.add_argument("--serve", action="store_true", help="keep serving after the demo calls")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C ends --serve
        asyncio.run(main(args.port, args.serve))
