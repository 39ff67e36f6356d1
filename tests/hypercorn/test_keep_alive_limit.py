"""Fix b: keep_alive_max_requests (default 1000) must not strand HTTP/2 streams."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from hypercorn.config import Config

from .helpers import VARIANTS, Receive, Scope, Send, echo_app, serve

clients: set[tuple[str, int]] = set()


async def recording_app(scope: Scope, receive: Receive, send: Send) -> None:
    clients.add(scope["client"])
    await echo_app(scope, receive, send)


@pytest.mark.parametrize("fixed", VARIANTS)
async def test_more_calls_than_keep_alive_max_requests(fixed: bool) -> None:
    config = Config()  # the default keep_alive_max_requests, as a user's config may keep it
    assert config.keep_alive_max_requests == 1000
    config.graceful_timeout = 3.0
    calls, in_flight = 1200, 64
    clients.clear()
    async with (
        serve(recording_app, config, fixed=fixed) as server,
        grpc.aio.insecure_channel(server.target) as channel,
    ):
        unary = channel.unary_unary("/test/Unary")
        gate = asyncio.Semaphore(in_flight)

        async def call(i: int) -> bytes | str:
            payload = b"%d" % i
            async with gate:
                try:
                    return await unary(payload, timeout=10)
                except grpc.aio.AioRpcError as error:
                    return f"{error.code().name}: {error.details()}"

        results = await asyncio.gather(*(call(i) for i in range(calls)))
        failures = [r for r in results if isinstance(r, str)]
        assert not failures, f"{len(failures)} calls failed, first: {failures[0]}"
        assert results == [b"%d" % i for i in range(calls)]
        # The limit was honoured gracefully: the client moved to a second connection.
        assert len(clients) >= 2
