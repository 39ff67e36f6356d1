"""Who runs the blocking API's event loop (asgi_grpc/_sync/_runner.py): a thread waiting for its
call runs it while nobody else does; with a blocking server in the process the loop stays on its
own thread. Against real servers; Ctrl-C cases are in test_lifecycle.py."""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from typing import Any

import grpc
import pytest

import asgi_grpc
from asgi_grpc.client._connection import Connection

from .conftest import Running, StartServer
from .servicer import pb2

Request = pb2.EchoRequest


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> collections.Counter[str]:
    """Which threads the client's connections read their sockets on, counted."""
    seen: collections.Counter[str] = collections.Counter()
    original = Connection.data_received

    def data_received(self: Connection, data: bytes) -> None:
        seen[threading.current_thread().name] += 1
        original(self, data)

    monkeypatch.setattr(Connection, "data_received", data_received)
    return seen


def test_back_to_back_calls_run_on_the_calling_thread(
    start_server: StartServer, reads: collections.Counter[str]
) -> None:
    stub = start_server("grpcio").stub()
    stub.Unary(Request(message="warm"))
    reads.clear()
    for i in range(200):
        assert stub.Unary(Request(message=str(i))).message == str(i)
    # The caller reads its own responses; the loop thread only when the caller was descheduled
    # for longer than the loop may stay parked (a loaded machine).
    assert reads["MainThread"] > 0.5 * sum(reads.values()), reads


def test_a_blocking_server_in_the_process_keeps_the_loop_on_its_thread(
    start_server: StartServer, reads: collections.Counter[str]
) -> None:
    stub = start_server("asgi_grpc").stub()
    for i in range(50):
        assert stub.Unary(Request(message=str(i))).message == str(i)
    assert set(reads) == {"asgi_grpc-loop"}, reads


@pytest.mark.parametrize("impl", ["grpcio", "asgi_grpc"])
def test_threads_share_the_loop(start_server: StartServer, impl: str) -> None:
    """Many threads leading and following in turn, with a stream read and futures completing
    in between: every call ends, none waits on a loop nobody runs."""
    server = start_server(impl)
    stub = server.stub()
    failures: list[BaseException] = []

    def calls(n: int) -> None:
        try:
            for i in range(100):
                message = f"{n}-{i}"
                if i % 10 == 0:
                    assert stub.Unary.future(Request(message=message)).result().message == message
                else:
                    assert stub.Unary(Request(message=message), timeout=10).message == message
        except BaseException as exc:
            failures.append(exc)

    stream = stub.ServerStream(Request(count=300, delay_ms=1))
    threads = [threading.Thread(target=calls, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    assert sum(1 for _ in stream) == 300
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []


def test_a_done_callback_runs_with_nobody_waiting(start_server: StartServer) -> None:
    stub = start_server("grpcio").stub()
    stub.Unary(Request(message="warm"))  # (the loop is now parked: nobody runs it)
    done = threading.Event()
    future = stub.Unary.future(Request(message="x"))
    future.add_done_callback(lambda _: done.set())
    assert done.wait(5)
    assert future.result().message == "x"


def test_a_deadline_passes_while_nobody_waits(start_server: StartServer) -> None:
    """The caller parks the loop between calls; its own thread takes it back soon, so a call
    nobody waits on still ends at its deadline."""
    stub = start_server("grpcio").stub()
    stub.Unary(Request(message="warm"))
    stream = stub.ServerStream(Request(count=1_000, delay_ms=50), timeout=0.3)
    time.sleep(1.0)
    assert not stream.is_active()
    assert stream.code().name == "DEADLINE_EXCEEDED"


@pytest.mark.parametrize("module", [grpc, asgi_grpc], ids=["grpcio", "asgi_grpc"])
def test_a_blocking_call_from_a_coroutine(h2c_peer: Running, module: Any) -> None:
    """A coroutine's thread runs its own loop: the blocking call must not try to run ours
    there (as grpcio, it simply blocks that loop until the call ends)."""
    stub = h2c_peer.stub(module)

    async def main() -> str:
        reply = stub.Unary(Request(message="from a coroutine"), timeout=10)
        return str(reply.message)

    assert asyncio.run(main()) == "from a coroutine"
