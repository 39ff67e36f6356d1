"""A channel and httpx REST calls on one set of HTTP/2 connections: ``channel.http_client``, and
a user's own ``httpx.AsyncClient`` handed to the channel (``http_client=``), over a real Hypercorn
on 127.0.0.1 serving a GrpcApp with a Starlette REST fallback."""

from __future__ import annotations

import os
import re
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

import asgi_grpc
from asgi_grpc.client import GrpcTransport
from asgi_grpc.server import GrpcApp

from ..conftest import TLS
from ..integration.servers import in_process

ECHO = "/http.Test/Echo"


async def hello(request: Request) -> Response:
    return PlainTextResponse("hello")


async def echo(request: bytes, context: Any) -> bytes:
    return request


def make_app() -> GrpcApp:
    handler = asgi_grpc.method_handlers_generic_handler(
        "http.Test", {"Echo": asgi_grpc.unary_unary_rpc_method_handler(echo)}
    )
    return GrpcApp([handler], fallback=Starlette(routes=[Route("/hello", hello)]))


def connections_to(port: int) -> int:
    """This process's established TCP connections to ``port``."""
    return sum(
        1
        for c in psutil.Process(os.getpid()).net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
    )


async def test_channel_http_client_shares_the_channel_connection() -> None:
    async with in_process(make_app()) as server:
        async with asgi_grpc.aio.insecure_channel(server.target) as channel:
            assert await channel.unary_unary(ECHO)(b"hi") == b"hi"
            response = await channel.http_client.get("/hello")
            assert (response.status_code, response.text) == (200, "hello")
            assert response.http_version == "HTTP/2"
            assert await channel.unary_unary(ECHO)(b"again") == b"again"
            assert connections_to(server.port) == 1


async def test_grpc_calls_on_the_users_client() -> None:
    async with in_process(make_app()) as server:
        client = httpx.AsyncClient(transport=GrpcTransport(), base_url=server.url)
        async with client:
            # REST first: the channel then joins the connection the client already has.
            assert (await client.get("/hello")).text == "hello"
            channel = asgi_grpc.aio.insecure_channel(server.target, http_client=client)
            assert channel.http_client is client
            assert await channel.unary_unary(ECHO)(b"hi") == b"hi"
            assert connections_to(server.port) == 1
            await channel.close()
            # The client is the user's: closing the channel leaves it (and its connection) up.
            assert (await client.get("/hello")).text == "hello"
            assert connections_to(server.port) == 1


async def test_the_users_event_hooks_see_grpc_calls() -> None:
    seen: list[str] = []

    async def log_request(request: httpx.Request) -> None:
        seen.append(f"{request.method} {request.url.path} {request.headers.get('x-user')}")
        if request.headers.get("x-user") == "mallory":
            raise PermissionError("no")

    async def log_response(response: httpx.Response) -> None:
        call = response.extensions.get("grpc_call")
        code = (await call.code()).name if call is not None else ""
        seen.append(f"{response.status_code} {response.request.url.path} {code}".rstrip())

    async with in_process(make_app()) as server:
        async with httpx.AsyncClient(
            transport=GrpcTransport(),
            base_url=server.url,
            event_hooks={"request": [log_request], "response": [log_response]},
        ) as client:
            async with asgi_grpc.aio.insecure_channel(server.target, http_client=client) as channel:
                echo_call = channel.unary_unary(ECHO)
                assert await echo_call(b"hi", metadata=(("x-user", "alice"),)) == b"hi"
                with pytest.raises(asgi_grpc.aio.AioRpcError):
                    await channel.unary_unary("/http.Test/Missing")(b"hi")
                # A request hook that raises stops the call before it reaches the server.
                with pytest.raises(PermissionError):
                    await echo_call(b"hi", metadata=(("x-user", "mallory"),))
            await client.get("/hello")
    # Response hooks run beside the calls: their order against later calls is not fixed.
    assert sorted(seen) == sorted(
        [
            f"POST {ECHO} alice",
            f"200 {ECHO} OK",
            "POST /http.Test/Missing None",
            "200 /http.Test/Missing UNIMPLEMENTED",
            f"POST {ECHO} mallory",
            "GET /hello None",
            "200 /hello",
        ]
    )
    assert [s for s in seen if s.startswith(("POST", "GET"))] == [
        f"POST {ECHO} alice",
        "POST /http.Test/Missing None",
        f"POST {ECHO} mallory",
        "GET /hello None",
    ]


async def test_tls_settings_come_from_the_users_transport(tls: TLS, tmp_path: Path) -> None:
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    cert.write_bytes(tls.server_chain)
    key.write_bytes(tls.server_key)
    context = ssl.create_default_context(cadata=tls.ca_pem.decode())
    async with in_process(make_app(), certfile=str(cert), keyfile=str(key)) as server:
        target = f"localhost:{server.port}"
        async with httpx.AsyncClient(
            transport=GrpcTransport(verify=context), base_url=f"https://{target}"
        ) as client:
            # The credentials' roots (the system's) would reject the throwaway CA: the
            # transport's context is the one in use.
            channel = asgi_grpc.aio.secure_channel(
                target, asgi_grpc.ssl_channel_credentials(), http_client=client
            )
            async with channel:
                assert await channel.unary_unary(ECHO)(b"tls") == b"tls"
            assert (await client.get("/hello")).text == "hello"
            assert connections_to(server.port) == 1


async def test_a_client_without_grpc_transport_is_refused() -> None:
    async with httpx.AsyncClient() as client:
        with pytest.raises(TypeError, match="AsyncHTTPTransport, which cannot carry gRPC"):
            asgi_grpc.aio.insecure_channel("127.0.0.1:1", http_client=client)


async def test_a_mounted_grpc_transport_is_used() -> None:
    async with in_process(make_app()) as server:
        async with httpx.AsyncClient(mounts={server.url: GrpcTransport()}) as client:
            async with asgi_grpc.aio.insecure_channel(server.target, http_client=client) as channel:
                assert await channel.unary_unary(ECHO)(b"hi") == b"hi"
            response = await client.get(f"{server.url}/hello")
            assert (response.http_version, response.text) == ("HTTP/2", "hello")
            assert connections_to(server.port) == 1


def test_readme_example(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    section = (root / "README.md").read_text().split("\n## httpx\n", 1)[1].split("\n## ", 1)[0]
    [code] = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    script = tmp_path / "httpx_example.py"
    script.write_text(code)
    path = os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": path},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["GET /healthz", "ok", "POST /demo.Echo/Echo", "b'hi'"]
