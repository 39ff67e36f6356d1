"""A streaming call's request buffer on a server that offers the body-listen extension (ours):
while its pump is parked, a chunk in the middle of the body is queued in the step that brings
it (the server's notification), and a sync handler's iterator is woken in that same step; the
body's end, the disconnect and the buffer's bound go through the pump as before.

Driven through ``_Stream``: the extension's side of a stream (input buffered until taken,
``receive``/``receive_nowait``, the listener called when input arrives), as
``GrpcHTTPStream`` offers it (tests/server/test_wire.py and the conformance suites run the real
one)."""

from __future__ import annotations

import asyncio
from typing import Any

from asgi_grpc._core import MessageReader, ProtocolError, StatusCode
from asgi_grpc.server._requests import RequestBuffer
from asgi_grpc.server._types import BODY_LISTEN_EXTENSION


def _message(payload: bytes) -> bytes:
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


class _Hooks:
    def __init__(self) -> None:
        self.callback: Any = None


class _Stream:
    def __init__(self) -> None:
        self.hooks = _Hooks()
        self.pending: list[dict[str, Any]] = []
        self.taken = 0  # events taken through receive_nowait
        self.disconnected = 0
        self._waiter: asyncio.Future[None] | None = None

    def scope(self) -> dict[str, Any]:
        offer = {"owner": id(self), "listen": self.hooks}
        return {"extensions": {BODY_LISTEN_EXTENSION: offer}}

    def arrive(self, event: dict[str, Any]) -> None:
        """Input arrives: queued, then the listener told (as the server does, in one step)."""
        self.pending.append(event)
        if self.hooks.callback is not None:
            self.hooks.callback()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def receive_nowait(self) -> dict[str, Any] | None:
        if not self.pending:
            return None
        self.taken += 1
        return self.pending.pop(0)

    async def receive(self) -> dict[str, Any]:
        while (event := self.receive_nowait()) is None:
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return event

    def buffer(self, limit: int = 1 << 20) -> RequestBuffer:
        def gone() -> None:
            self.disconnected += 1

        return RequestBuffer(self.scope(), self.receive, MessageReader(), limit, gone)


async def _turns(count: int = 5) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


async def test_a_chunk_is_queued_in_the_step_that_brings_it() -> None:
    stream = _Stream()
    requests = stream.buffer()
    pump = asyncio.ensure_future(requests.pump())
    await _turns()  # parked
    ready: list[object] = []
    assert requests.when_ready(lambda: ready.append(requests.take()))
    stream.arrive({"type": "http.request", "body": _message(b"a") * 3, "more_body": True})
    # No loop turn: queued, and the waiting iterator's callback ran, inside arrive().
    assert ready == [(False, b"a")]
    assert requests.buffered
    assert requests.pop() == (False, b"a")
    assert requests.pop() == (False, b"a")
    assert not pump.done()
    pump.cancel()
    await asyncio.gather(pump, return_exceptions=True)
    assert stream.hooks.callback is None  # dropped when the pump ends


async def test_the_end_and_the_disconnect_go_through_the_pump() -> None:
    stream = _Stream()
    requests = stream.buffer()
    pump = asyncio.ensure_future(requests.pump())
    await _turns()
    stream.arrive({"type": "http.request", "body": _message(b"last"), "more_body": False})
    await _turns()
    assert requests.pop() == (False, b"last")
    assert requests.when_ready(lambda: None) is False  # the end: next() returns None at once
    assert requests.take() is None
    stream.arrive({"type": "http.disconnect"})
    await asyncio.wait_for(pump, 5)
    assert stream.disconnected == 1


async def test_the_bound_stops_taking_input_until_there_is_room() -> None:
    """Over the bound the listener leaves input where it is (the server then holds the client
    at its flow-control window), and the pump takes it once the handler made room."""
    stream = _Stream()
    requests = stream.buffer(limit=1000)
    pump = asyncio.ensure_future(requests.pump())
    await _turns()
    chunk = {"type": "http.request", "body": _message(b"x" * 600), "more_body": True}
    stream.arrive(dict(chunk))
    stream.arrive(dict(chunk))  # over the bound after this one
    await _turns()
    held = requests.buffered
    assert held > 1000
    stream.arrive(dict(chunk))
    stream.arrive(dict(chunk))
    await _turns()
    assert requests.buffered == held
    assert stream.taken == 2
    assert len(stream.pending) == 2
    requests.pop()
    requests.pop()  # room again: the pump goes on
    await _turns()
    assert stream.taken == 4
    assert not stream.pending
    assert requests.buffered == held
    pump.cancel()
    await asyncio.gather(pump, return_exceptions=True)


async def test_a_malformed_chunk_taken_by_the_listener_fails_the_call() -> None:
    stream = _Stream()
    requests = stream.buffer()
    pump = asyncio.ensure_future(requests.pump())
    await _turns()
    errors: list[int] = []

    def ready() -> None:
        try:
            requests.take()
        except ProtocolError as exc:
            errors.append(exc.code)

    assert requests.when_ready(ready)
    stream.arrive({"type": "http.request", "body": b"\x07\x00\x00\x00\x00", "more_body": True})
    assert errors == [StatusCode.INTERNAL]
    pump.cancel()
    await asyncio.gather(pump, return_exceptions=True)
