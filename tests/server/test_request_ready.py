"""A sync handler's request iterator waits on the request buffer through ``when_ready``: the
callback runs once, in the step that made the buffer ready (the pump's, or whoever ends the
call), with no loop turn in between, for a message, the body's end, a malformed body, the
client's disconnect and the call's end alike. Driven through the buffer's ASGI ``receive``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from asgi_grpc._core import MessageReader, ProtocolError, StatusCode
from asgi_grpc.server._requests import RequestBuffer


def _message(payload: bytes) -> bytes:
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


class _Client:
    """The ASGI side: events the test hands to the buffer's pump."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.disconnected = 0

    async def receive(self) -> dict[str, Any]:
        return await self.events.get()

    def buffer(self) -> RequestBuffer:
        def on_disconnect() -> None:
            self.disconnected += 1

        return RequestBuffer({}, self.receive, MessageReader(), 1 << 20, on_disconnect)


async def _until(predicate: Any) -> None:
    for _ in range(100):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("not reached")


@pytest.mark.parametrize(
    "ending",
    ["message", "end of body", "malformed body", "disconnect"],
)
async def test_callback_runs_once_in_the_pumps_step(ending: str) -> None:
    client = _Client()
    requests = client.buffer()
    pump = asyncio.ensure_future(requests.pump())
    ran_in: list[object] = []
    assert requests.when_ready(lambda: ran_in.append(asyncio.current_task()))
    await asyncio.sleep(0)  # the pump waits in receive()
    assert ran_in == []
    event: dict[str, Any] = {
        "message": {"type": "http.request", "body": _message(b"a"), "more_body": True},
        "end of body": {"type": "http.request", "body": b"", "more_body": False},
        "malformed body": {"type": "http.request", "body": b"\x07\x00", "more_body": False},
        "disconnect": {"type": "http.disconnect"},
    }[ending]
    client.events.put_nowait(event)
    await _until(lambda: ran_in)
    assert ran_in == [pump]  # called by the pump itself: no loop turn before the hand-off
    if ending == "message":
        assert requests.take() == (False, b"a")
    elif ending == "end of body":
        assert requests.take() is None
    else:
        with pytest.raises(ProtocolError) as raised:
            requests.take()
        expected = StatusCode.CANCELLED if ending == "disconnect" else StatusCode.INTERNAL
        assert raised.value.code is expected
    # Once: later messages do not call it again.
    client.events.put_nowait({"type": "http.request", "body": _message(b"b"), "more_body": True})
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(ran_in) == 1
    pump.cancel()
    await asyncio.gather(pump, return_exceptions=True)


async def test_ready_at_once_when_something_is_buffered() -> None:
    client = _Client()
    requests = client.buffer()
    pump = asyncio.ensure_future(requests.pump())
    client.events.put_nowait({"type": "http.request", "body": _message(b"x"), "more_body": True})
    await _until(lambda: requests.buffered)
    called: list[int] = []
    assert not requests.when_ready(lambda: called.append(1))  # take at once, no callback kept
    assert requests.take() == (False, b"x")
    client.events.put_nowait({"type": "http.request", "body": _message(b"y"), "more_body": True})
    await _until(lambda: requests.buffered)
    assert called == []
    pump.cancel()
    await asyncio.gather(pump, return_exceptions=True)


async def test_the_calls_end_wakes_a_waiting_iterator() -> None:
    """clear() (the call is over) runs the callback: the worker's iterator sees the end instead
    of waiting for a message nobody will take."""
    client = _Client()
    requests = client.buffer()
    called: list[object] = []
    assert requests.when_ready(lambda: called.append(requests.take()))
    requests.clear()
    assert called == [None]
