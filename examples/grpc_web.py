"""gRPC-Web: browsers (and other gRPC-Web clients) call the same servicers, no proxy in front.

    python examples/grpc_web.py [--port N] [--serve] [--cors-origin ORIGIN]

One :class:`asgi_grpc.server.GrpcApp` serves the Greeter (examples/greeter.proto) over gRPC and
gRPC-Web on one port, HTTP/1.1 and HTTP/2; pages from ``--cors-origin`` (default
``http://localhost:5173``, a typical dev server) may call it cross-origin (CORS). The example
then makes the calls a browser would: a CORS preflight, and gRPC-Web calls written by hand
with httpx (the trailers arrive as the body's last frame), then the same calls with asgi_grpc's
own client speaking gRPC-Web (channel option ``asgi_grpc.grpc_web``), prints what came back,
and exits 0. A browser app uses @connectrpc/connect-web's ``createGrpcWebTransport`` or
Google's grpc-web against the same URL (see README.md, "gRPC-Web").
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import socket
import struct
import tempfile
from pathlib import Path
from typing import Any

import httpx
from demo import compile_protos  # examples/demo.py: compiles greeter.proto at run time
from hypercorn.asyncio import serve

import asgi_grpc.aio
from asgi_grpc.server import GrpcApp, GrpcWebConfig, grpc_config


def build_app(pb2: Any, pb2_grpc: Any, cors_origin: str) -> GrpcApp:
    class Greeter(pb2_grpc.GreeterServicer):  # type: ignore[misc]
        async def SayHello(self, request: Any, context: Any) -> Any:
            if not request.name:
                await context.abort(asgi_grpc.StatusCode.INVALID_ARGUMENT, "name is required")
            await context.send_initial_metadata((("x-greeted-by", "asgi_grpc"),))
            return pb2.HelloReply(message=f"Hello, {request.name}!")

        async def SayHelloStream(self, request: Any, context: Any) -> Any:
            for i in range(request.count):
                yield pb2.HelloReply(message=f"Hello #{i + 1}, {request.name}!")

    # gRPC-Web is on by default; CORS only for the origins named here ("*": any; or a callable).
    app = GrpcApp(grpc_web=GrpcWebConfig(cors_origins=[cors_origin]))
    pb2_grpc.add_GreeterServicer_to_server(Greeter(), app)
    return app


def web_frames(body: bytes) -> tuple[list[bytes], bytes]:
    """A gRPC-Web response body: its messages, and the trailer block (the 0x80 frame)."""
    messages, trailers, offset = [], b"", 0
    while offset < len(body):
        flag, length = struct.unpack_from(">BI", body, offset)
        payload = body[offset + 5 : offset + 5 + length]
        offset += 5 + length
        if flag & 0x80:
            trailers = payload
        else:
            messages.append(payload)
    return messages, trailers


async def by_hand(base_url: str, pb2: Any, origin: str) -> None:
    """What a browser's gRPC-Web library does, spelled out with httpx (HTTP/1.1)."""
    async with httpx.AsyncClient(base_url=base_url) as http:
        path = "/demo.Greeter/SayHello"
        preflight = await http.options(
            path,
            headers={
                "origin": origin,
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type,x-grpc-web,x-user-agent",
            },
        )
        print(
            f"CORS  preflight -> {preflight.status_code}, allow-origin "
            f"{preflight.headers['access-control-allow-origin']}"
        )
        request = pb2.HelloRequest(name="browser").SerializeToString()
        framed = struct.pack(">BI", 0, len(request)) + request
        for content_type in ("application/grpc-web+proto", "application/grpc-web-text"):
            text = "-text" in content_type
            response = await http.post(
                path,
                content=base64.b64encode(framed) if text else framed,
                headers={"content-type": content_type, "x-grpc-web": "1", "origin": origin},
            )
            body = response.content
            if text:  # base64 per flushed frame: decode 4 characters at a time
                body = b"".join(base64.b64decode(body[i : i + 4]) for i in range(0, len(body), 4))
            messages, trailers = web_frames(body)
            reply = pb2.HelloReply.FromString(messages[0])
            print(f"{content_type} -> {reply.message!r}, trailers {trailers!r}")


async def with_asgi_grpc(target: str, pb2: Any, pb2_grpc: Any) -> None:
    """asgi_grpc's client over gRPC-Web: the grpc.aio API, only the channel option differs."""
    options = [("asgi_grpc.grpc_web", True)]  # or "text" for application/grpc-web-text
    async with asgi_grpc.aio.insecure_channel(target, options=options) as channel:
        stub = pb2_grpc.GreeterStub(channel)
        call = stub.SayHello(pb2.HelloRequest(name="asgi_grpc"), timeout=10)
        print(
            f"gRPC-Web SayHello -> {(await call).message!r}, "
            f"initial metadata {list(await call.initial_metadata())}"
        )
        stream = stub.SayHelloStream(pb2.HelloRequest(name="web", count=2), timeout=10)
        print(f"gRPC-Web SayHelloStream -> {[r.message async for r in stream]}")
        try:
            await stub.SayHello(pb2.HelloRequest(), timeout=10)
        except asgi_grpc.aio.AioRpcError as error:
            print(f"gRPC-Web error -> {error.code().name}: {error.details()}")


async def main(port: int, keep_serving: bool, origin: str) -> None:
    with tempfile.TemporaryDirectory(prefix="asgi_grpc_web_") as out:
        pb2, pb2_grpc = compile_protos(Path(out))
    app = build_app(pb2, pb2_grpc, origin)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    port = sock.getsockname()[1]
    config = grpc_config(bind=[f"fd://{sock.detach()}"], graceful_timeout=5.0)
    stop = asyncio.Event()
    server = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    print(f"serving gRPC and gRPC-Web on 127.0.0.1:{port} (CORS for {origin})")
    try:
        await by_hand(f"http://127.0.0.1:{port}", pb2, origin)
        await with_asgi_grpc(f"127.0.0.1:{port}", pb2, pb2_grpc)
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
    parser.add_argument("--serve", action="store_true", help="keep serving after the calls")
    parser.add_argument(
        "--cors-origin", default="http://localhost:5173", help="origin whose pages may call"
    )
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args.port, args.serve, args.cors_origin))
