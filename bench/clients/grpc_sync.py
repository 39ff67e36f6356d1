"""Client driver for any implementation of grpc's synchronous API: grpcio itself, and asgi_grpc
(``import asgi_grpc as grpc``), with the same grpcio-generated stub.

The workload loops are async (bench/workloads.py); each blocking call runs on a thread of a pool
of this driver's own, one thread per call in flight (64 for ``unary_64``), which is how a
threaded sync program issues concurrent calls. Both implementations pay the same hand-off.
"""

from __future__ import annotations

import asyncio
import itertools
import queue
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.clients.base import PingPong, check_size
from bench.proto import load, stubs_for
from bench.tls import read as read_tls
from bench.workloads import CONCURRENCY

_END = object()


class _SyncPingPong:
    def __init__(self, driver: GrpcSyncDriver) -> None:
        self._driver = driver
        self._outbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._call = driver._stub.Bidi(self._requests())

    def _requests(self) -> Iterator[Any]:
        while True:
            request = self._outbox.get()
            if request is _END:
                return
            yield request

    def _round_trip(self, payload: bytes) -> None:
        self._outbox.put(self._driver._pb2.EchoRequest(payload=payload))
        response = next(self._call)
        check_size("bidi response", len(response.payload), len(payload))

    async def round_trip(self, payload: bytes) -> None:
        await self._driver._run(self._round_trip, payload)

    def _finish(self) -> None:
        self._outbox.put(_END)
        for _ in self._call:
            raise RuntimeError("bidi call sent a response nobody asked for")
        code = self._call.code()
        if code.name != "OK":
            raise RuntimeError(f"bidi call ended with {code}: {self._call.details()}")


class GrpcSyncDriver:
    def __init__(self, grpc: ModuleType, target: str, gen_dir: Path, tls: Path | None) -> None:
        self._pb2, pb2_grpc = load(gen_dir, "echo_pb2", stubs_for(grpc))
        if tls is None:
            self._channel = grpc.insecure_channel(target)
        else:
            credentials = grpc.ssl_channel_credentials(read_tls(tls)[0])
            self._channel = grpc.secure_channel(target, credentials)
        self._stub = pb2_grpc.EchoStub(self._channel)
        self._pool = ThreadPoolExecutor(CONCURRENCY + 1, thread_name_prefix="bench-call")

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def _unary(self, payload: bytes) -> None:
        response = self._stub.Unary(self._pb2.EchoRequest(payload=payload))
        check_size("unary response", len(response.payload), len(payload))

    async def unary(self, payload: bytes) -> None:
        await self._run(self._unary, payload)

    def _server_stream(self, count: int, size: int) -> int:
        received = 0
        for response in self._stub.ServerStream(
            self._pb2.EchoRequest(count=count, response_size=size)
        ):
            check_size("stream message", len(response.payload), size)
            received += 1
        check_size("stream", received, count)
        return received

    async def server_stream(self, count: int, size: int) -> int:
        received: int = await self._run(self._server_stream, count, size)
        return received

    def _client_stream(self, count: int, payload: bytes) -> int:
        request = self._pb2.EchoRequest(payload=payload)
        counted: int = self._stub.ClientStream(itertools.repeat(request, count)).index
        check_size("client stream", counted, count)
        return counted

    async def client_stream(self, count: int, payload: bytes) -> int:
        counted: int = await self._run(self._client_stream, count, payload)
        return counted

    @asynccontextmanager
    async def bidi(self) -> AsyncIterator[PingPong]:
        call = await self._run(_SyncPingPong, self)
        yield call
        await self._run(call._finish)

    async def close(self) -> None:
        await self._run(self._channel.close)
        self._pool.shutdown(wait=False)


def grpcio(target: str, gen_dir: Path, tls: Path | None = None) -> GrpcSyncDriver:
    import grpc

    return GrpcSyncDriver(grpc, target, gen_dir, tls)


def asgi_grpc(target: str, gen_dir: Path, tls: Path | None = None) -> GrpcSyncDriver:
    import asgi_grpc

    return GrpcSyncDriver(asgi_grpc, target, gen_dir, tls)


def asgi_grpc_base(target: str, gen_dir: Path, tls: Path | None = None) -> GrpcSyncDriver:
    """asgi_grpc's blocking client from the checkout ASGI_GRPC_BASELINE names (baseline.py)."""
    from bench import baseline

    baseline.use()
    return asgi_grpc(target, gen_dir, tls)
