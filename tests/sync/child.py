"""Programs that test_lifecycle.py runs in a subprocess:
``python -m tests.sync.child SCENARIO TARGET``.

Each prints ``ready`` once its calls are in flight, then what happened, line by line.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from concurrent import futures

import asgi_grpc
from tests.sync.servicer import SteeredEcho, pb2, pb2_grpc

Request = pb2.EchoRequest


def say(text: str) -> None:
    print(text, flush=True)


def threads() -> str:
    return ",".join(sorted(t.name for t in threading.enumerate()))


def interrupt_unary(stub: pb2_grpc.EchoStub) -> None:
    try:
        say("ready")
        stub.Unary(Request(message="wait_cancel"))
        say("returned")
    except KeyboardInterrupt:
        say("interrupted")
    time.sleep(1.5)  # stay alive: the server must see the call cancelled, not the socket close
    say(f"threads {threads()}")


def interrupt_stream(stub: pb2_grpc.EchoStub) -> None:
    def slow_requests() -> object:
        for i in range(100_000):
            time.sleep(0.01)
            yield Request(message=str(i))

    call = stub.BidiStream(slow_requests())
    try:
        next(call)
        say("ready")
        for _ in call:
            pass
    except KeyboardInterrupt:
        say("interrupted")
    say(f"code {call.code().name}")
    time.sleep(0.5)
    say(f"threads {threads()}")


def interrupt_future(stub: pb2_grpc.EchoStub) -> None:
    future = stub.Unary.future(Request(message="wait_cancel"))
    try:
        say("ready")
        future.result()
    except KeyboardInterrupt:
        say("interrupted")
    say(f"cancelled {future.cancelled()}")
    time.sleep(1.5)


def interrupt_busy_calls(stub: pb2_grpc.EchoStub) -> None:
    """Ctrl-C lands at any point of back-to-back calls, which this (main) thread makes by running
    the event loop itself: each interrupt surfaces as KeyboardInterrupt from a call, and no loop
    callback is cut short: a stream on the same connection, read by another thread, goes on."""
    stream = stub.ServerStream(Request(count=1_000_000, delay_ms=2))
    received = [0]

    def read() -> None:
        for _ in stream:
            received[0] += 1

    threading.Thread(target=read, daemon=True).start()
    interrupted = 0
    say("ready")
    while interrupted < 40:
        try:
            while True:
                stub.Unary(Request(message="hi"))
        except KeyboardInterrupt:  # noqa: PERF203
            interrupted += 1
            say(f"interrupted {interrupted}")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # (one the test sent again arrives late)
    replies = {stub.Unary(Request(message=str(i)), timeout=5).message for i in range(200)}
    say(f"after {len(replies)}")
    before = received[0]
    time.sleep(0.3)
    say(f"stream {stream.is_active() and received[0] > before}")
    stream.cancel()


def unhandled_interrupt(stub: pb2_grpc.EchoStub) -> None:
    say("ready")
    stub.Unary(Request(message="wait_cancel"))


def exit_in_flight(stub: pb2_grpc.EchoStub) -> None:
    """Leave calls of every kind in flight on daemon threads and futures, then exit."""

    def blocked() -> None:
        stub.Unary(Request(message="wait_cancel"))

    for _ in range(4):
        threading.Thread(target=blocked, daemon=True).start()
    stub.Unary.future(Request(message="wait_cancel"))
    stream = stub.ServerStream(Request(count=1_000_000, delay_ms=10))
    next(stream)

    def forever() -> object:
        while True:
            time.sleep(0.01)
            yield Request(message="x")

    bidi = stub.BidiStream(forever())
    next(bidi)
    time.sleep(0.3)
    say("ready")
    say("exiting")


def server_interrupt(_: object) -> None:
    """A sync server blocked in wait_for_termination(), as grpcio's examples write it."""
    server = asgi_grpc.server(futures.ThreadPoolExecutor(4))
    pb2_grpc.add_EchoServicer_to_server(SteeredEcho(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    say(f"port {port}")
    say("ready")
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:
        say("interrupted")
        server.stop(0.5).wait()
        say("stopped")


SCENARIOS = {
    "interrupt_unary": interrupt_unary,
    "interrupt_stream": interrupt_stream,
    "interrupt_future": interrupt_future,
    "interrupt_busy_calls": interrupt_busy_calls,
    "unhandled_interrupt": unhandled_interrupt,
    "exit_in_flight": exit_in_flight,
    "server_interrupt": server_interrupt,
}


def main() -> None:
    scenario, target = sys.argv[1], sys.argv[2]
    if scenario == "server_interrupt":
        server_interrupt(None)
        return
    channel = asgi_grpc.insecure_channel(target)
    SCENARIOS[scenario](pb2_grpc.EchoStub(channel))


if __name__ == "__main__":
    main()
