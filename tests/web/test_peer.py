"""gRPC-Web against an independent implementation from npm, @connectrpc/connect-node (run by
node): the asgi_grpc client calls its gRPC-Web server (HTTP/1.1 and h2c), and its gRPC-Web
client calls our server (HTTP/1.1 and HTTP/2). In CI a missing node or npm package fails."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from google.rpc import status_pb2

import asgi_grpc
from tests.web import browser
from tests.web.servicer import FAIL_DETAILS, pb2, pb2_grpc

_missing = browser.missing_node()
if _missing is not None:
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"CI must run the gRPC-Web peer tests, but {_missing}")
    pytest.skip(f"gRPC-Web peer tests skipped: {_missing}", allow_module_level=True)

DETAIL = {"message": "the detail", "index": 7}


@pytest.fixture(scope="module")
def peer_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("peer") / "peer.mjs"
    path.write_bytes(browser.build_bundle(browser.PEER, platform="node"))
    return path


@pytest.fixture(scope="module")
def peer_server(peer_script: Path) -> Iterator[dict[str, int]]:
    process = subprocess.Popen(
        ["node", str(peer_script), "server"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ports = json.loads(process.stdout.readline())
        yield ports
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(
    params=[
        pytest.param(("http1", []), id="http1"),
        pytest.param(("http2", [("asgi_grpc.grpc_web_http2", True)]), id="h2c"),
    ]
)
async def peer_stub(
    request: pytest.FixtureRequest, peer_server: dict[str, int]
) -> AsyncIterator[Any]:
    which, extra = request.param
    options = [("asgi_grpc.grpc_web", True), *extra]
    target = f"127.0.0.1:{peer_server[which]}"
    async with asgi_grpc.aio.insecure_channel(target, options=options) as channel:
        yield pb2_grpc.EchoStub(channel)


async def test_our_client_unary_and_streams(peer_stub: Any) -> None:
    assert (await peer_stub.Unary(pb2.EchoRequest(message="hi"))).message == "hi"
    call = peer_stub.ServerStream(pb2.EchoRequest(message="s", count=3))
    assert [r.message async for r in call] == ["s-0", "s-1", "s-2"]

    async def words() -> AsyncIterator[Any]:
        for word in ("x", "y"):
            yield pb2.EchoRequest(message=word)

    assert (await peer_stub.ClientStream(words())).message == "x+y"


async def test_our_client_error_details_metadata_deadline(peer_stub: Any) -> None:
    with pytest.raises(asgi_grpc.aio.AioRpcError) as info:
        await peer_stub.Unary(pb2.EchoRequest(message="fail"))
    assert info.value.code() == asgi_grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == FAIL_DETAILS
    trailing = dict(info.value.trailing_metadata())
    assert trailing["x-fail"] == "yes"
    status = status_pb2.Status.FromString(trailing["grpc-status-details-bin"])
    detail = pb2.EchoResponse()
    assert status.details[0].Unpack(detail)
    assert (detail.message, detail.index) == ("the detail", 7)

    call = peer_stub.ServerStream(pb2.EchoRequest(message="fail", count=5))
    assert [(await call.read()).index for _ in range(2)] == [0, 1]
    with pytest.raises(asgi_grpc.aio.AioRpcError):
        await call.read()
    assert await call.code() == asgi_grpc.StatusCode.INVALID_ARGUMENT

    call = peer_stub.Unary(pb2.EchoRequest(message="meta"), metadata=(("x-req", "py"),))
    assert (await call).message == "meta:py"
    assert dict(await call.initial_metadata())["x-echo"] == "py"
    assert dict(await call.trailing_metadata())["x-trail"] == "t-py"

    reply = await peer_stub.Unary(pb2.EchoRequest(message="deadline"), timeout=5)
    assert 3000 < reply.index <= 5000
    with pytest.raises(asgi_grpc.aio.AioRpcError) as info:
        await peer_stub.Unary(pb2.EchoRequest(message="slow", delay_ms=3000), timeout=0.3)
    assert info.value.code() == asgi_grpc.StatusCode.DEADLINE_EXCEEDED


@pytest.mark.parametrize("http_version", ["1.1", "2"])
async def test_connect_node_client_against_our_server(
    peer_script: Path, web_server: Any, http_version: str
) -> None:
    async with web_server() as base_url:
        output = await _run_node(peer_script, "client", base_url, http_version)
    results = json.loads(output)
    assert results["unary"] == "hi from node"
    assert results["stream"] == [["s-0", 0], ["s-1", 1], ["s-2", 2]]
    for error in (results["error"], results["streamError"]["error"]):
        assert error["codeName"] == "InvalidArgument"
        assert error["rawMessage"] == FAIL_DETAILS
        assert error["details"] == [DETAIL]
        assert error["metadata"]["x-fail"] == "yes"
    assert results["streamError"]["received"] == [0, 1]
    metadata = results["metadata"]
    assert metadata["reply"] == "meta:from-node"
    assert metadata["headers"]["x-echo"] == "from-node"
    assert metadata["trailers"]["x-trail"] == "t-from-node"
    assert 3000 < results["remainingMs"] <= 5000
    assert results["deadline"]["codeName"] == "DeadlineExceeded"
    assert results["clientStream"] == "a+b"


async def _run_node(*args: Any) -> str:
    process = await asyncio.create_subprocess_exec(
        "node", *map(str, args), stdout=asyncio.subprocess.PIPE
    )
    stdout, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0
    return stdout.decode()
