"""The interop cases (tests/interop/cases.py) against the app served by each ASGI server,
through ``asgi-grpc serve --server hypercorn|uvicorn|pyvoy``, with grpcio's and asgi_grpc's
clients: every case over h2c behind the wire tap (each call checked against PROTOCOL-HTTP2.md),
the TLS cases over TLS, and every case at once on one connection.

One server per ASGI server and transport for the module (pyvoy starts Envoy: seconds); each case
gets a fresh channel, and after it that channel must still answer an EmptyCall.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.cli.serving import Served
from tests.conftest import TLS
from tests.interop._protos import load_protos
from tests.interop.cases import ALL_CASES
from tests.interop.harness import Endpoint, assert_wire_ok, library, open_channel
from tests.interop.test_interop import CASE_TIMEOUT, CLIENT_IMPLS, NOT_CONCURRENT, TLS_CASES
from tests.interop.wire import WireTap

from .serving import port, serve, server_params


@pytest.fixture(scope="module", params=server_params())
def h2c(request: pytest.FixtureRequest) -> Iterator[Served]:
    with serve(request.param, "interop") as served:
        yield served


@pytest.fixture(scope="module", params=server_params())
def secure(request: pytest.FixtureRequest, tls: TLS) -> Iterator[Served]:
    with serve(request.param, "interop", tls=tls) as served:
        yield served


async def _run(case_name: str, client_impl: str, endpoint: Endpoint, tls: TLS | None) -> None:
    protos = load_protos()
    client_module = library(client_impl)
    async with open_channel(client_module, endpoint, tls=tls) as channel:
        await asyncio.wait_for(
            ALL_CASES[case_name](protos, channel, client_module, tap=endpoint.tap), CASE_TIMEOUT
        )
        stub = protos.services.TestServiceStub(channel)
        await asyncio.wait_for(stub.EmptyCall(protos.empty.Empty()), 5)


@pytest.mark.parametrize("client_impl", CLIENT_IMPLS)
@pytest.mark.parametrize("name", list(ALL_CASES))
async def test_h2c(name: str, client_impl: str, h2c: Served) -> None:
    tap = await WireTap.start(port(h2c))
    try:
        await _run(name, client_impl, Endpoint(f"127.0.0.1:{tap.port}", tap), None)
        await assert_wire_ok(tap)
    finally:
        await tap.close()


@pytest.mark.parametrize("client_impl", CLIENT_IMPLS)
@pytest.mark.parametrize("name", TLS_CASES)
async def test_tls(name: str, client_impl: str, secure: Served, tls: TLS) -> None:
    await _run(name, client_impl, Endpoint(secure.target, None), tls)


@pytest.mark.parametrize("client_impl", CLIENT_IMPLS)
async def test_all_cases_concurrently(client_impl: str, h2c: Served) -> None:
    """Every case at once on one channel: the server keeps the streams apart."""
    protos = load_protos()
    client_module = library(client_impl)
    tap = await WireTap.start(port(h2c))
    try:
        async with open_channel(client_module, Endpoint(f"127.0.0.1:{tap.port}", tap)) as channel:
            names = [name for name in ALL_CASES if name not in NOT_CONCURRENT]
            results = await asyncio.wait_for(
                asyncio.gather(
                    *(ALL_CASES[name](protos, channel, client_module) for name in names),
                    return_exceptions=True,
                ),
                CASE_TIMEOUT,
            )
        failures = {
            name: repr(result)
            for name, result in zip(names, results, strict=True)
            if isinstance(result, BaseException)
        }
        assert failures == {}, f"{failures}\n{tap.describe()}"
        await assert_wire_ok(tap)
    finally:
        await tap.close()
