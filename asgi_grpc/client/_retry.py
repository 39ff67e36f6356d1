"""Retries and hedging (gRFC A6) below the call: one stream made of several attempts.

A call with a ``retryPolicy`` or ``hedgingPolicy`` gets a :class:`RetryingStream` where it
would get a :class:`~._stream.Stream`; the call cannot tell them apart. Attempts are real
streams; the request messages sent so far are kept (up to ``grpc.per_rpc_retry_buffer_size``)
and replayed on each new attempt. The call *commits* to an attempt when that attempt receives
response headers (the application may have seen them), when the buffer overflows, or when the
planner (:class:`~._service_config.RetryPlanner`) says no further attempt will be made; from
then on every method goes to the committed attempt, and the others are cancelled.

An attempt that ends before its headers (a trailers-only status, a reset, a failed connection)
is a candidate for a retry: the planner decides, from its status and the server's
``grpc-retry-pushback-ms``, whether and when. Retries run one at a time; hedges run in
parallel, one more every ``hedgingDelay``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from .._core import Headers, StatusCode, encode_timeout, status_from_wire
from ._service_config import (
    PREVIOUS_ATTEMPTS_KEY,
    PUSHBACK_KEY,
    RetryPlan,
    RetryPlanner,
    parse_pushback,
)
from ._transport_errors import StreamClosed, TransportError

__all__ = ["RetryingStream"]

# Opens one attempt's stream with these headers: with the whole body (sent and half-closed),
# or, for None, with no body yet. May raise TransportError.
OpenAttempt = Callable[[Headers, "bytes | None"], Awaitable[Any]]


class _Attempt:
    __slots__ = ("error", "number", "replayed", "stream", "task")

    def __init__(self, number: int) -> None:
        self.number = number  # how many attempts came before it
        self.stream: Any = None
        self.error: TransportError | None = None
        self.replayed = False  # the buffered requests have been sent on it
        self.task: asyncio.Task[None] | None = None


class RetryingStream:
    """A Stream (as calls use one) that retries or hedges its request over several attempts."""

    __slots__ = (
        "_body",
        "_buffer",
        "_buffered",
        "_closed",
        "_deadline",
        "_decided",
        "_ended",
        "_error",
        "_headers",
        "_last",
        "_live",
        "_lock",
        "_loop",
        "_open",
        "_overflow",
        "_planner",
        "_stream",
        "_timer",
    )

    def __init__(
        self,
        plan: RetryPlan,
        open_attempt: OpenAttempt,
        headers: Headers,
        body: bytes | None,
        deadline: float | None,
        planner: RetryPlanner | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._planner = planner or RetryPlanner(plan)
        self._open = open_attempt
        self._headers = headers
        self._deadline = deadline  # loop time; later attempts send the time left
        self._body = body  # a unary request: sent whole with each attempt
        self._buffer: list[bytes] = []  # a streamed request: what was sent so far
        self._buffered = 0
        self._ended = False
        self._overflow = False
        self._lock = asyncio.Lock()  # keeps sends and replays in order
        self._live: list[_Attempt] = []
        self._last: _Attempt | None = None  # the latest failed attempt, while retrying
        self._timer: asyncio.TimerHandle | None = None
        self._stream: Any = None  # the committed attempt's stream
        self._error: TransportError | None = None  # ... or how the call failed without one
        self._decided: asyncio.Future[None] = self._loop.create_future()
        self._closed = False
        self._start_attempt()
        if body is not None and len(body) > plan.buffer_limit:
            # A6: a request the buffer cannot hold is sent once, and never retried.
            self._planner.commit()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    # ------------------------------------------------------------------ attempts

    def _start_attempt(self) -> None:
        self._timer = None
        planner = self._planner
        if self._closed or self._decided.done():
            return
        if not planner.may_start():
            if not self._live and self._last is not None:
                self._commit(self._last)  # throttled meanwhile: the last failure stands
            return
        last, self._last = self._last, None
        if last is not None and last.stream is not None:
            last.stream.close()
        attempt = _Attempt(planner.started())
        self._live.append(attempt)
        attempt.task = self._loop.create_task(self._run(attempt))
        if planner.hedging and planner.may_start():
            self._schedule(planner.policy.hedging_delay)  # type: ignore[union-attr]

    def _schedule(self, delay: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(delay, self._start_attempt)

    def _attempt_headers(self, number: int) -> Headers:
        if number == 0:
            return self._headers
        headers = [*self._headers, (PREVIOUS_ATTEMPTS_KEY, b"%d" % number)]
        if self._deadline is not None:
            remaining = encode_timeout(self._deadline - self._loop.time()).encode("ascii")
            headers = [(k, remaining if k == b"grpc-timeout" else v) for k, v in headers]
        return headers

    async def _run(self, attempt: _Attempt) -> None:
        code = StatusCode.OK
        pushback: float | None = None
        try:
            attempt.stream = await self._open(self._attempt_headers(attempt.number), self._body)
            if self._body is None:
                await self._replay(attempt)
            head = await attempt.stream.headers()
        except TransportError as exc:
            attempt.error = exc
            code = exc.status
        except asyncio.CancelledError:
            if attempt.stream is not None:
                attempt.stream.close()
            raise
        except Exception as exc:  # a bug below: fail the call rather than leave it hanging
            attempt.error = TransportError(f"attempt failed: {exc!r}")
            attempt.error.status = code = StatusCode.INTERNAL
        else:
            if not attempt.stream.trailers_only:
                self._commit(attempt)  # response headers: the application may see them now
                return
            status = None
            for name, value in head:
                if name == b"grpc-status":
                    status = value
                elif name == PUSHBACK_KEY:
                    pushback = parse_pushback(value)
            code = status_from_wire(status)
        self._failed(attempt, code, pushback)

    async def _replay(self, attempt: _Attempt) -> None:
        async with self._lock:
            stream = attempt.stream
            try:
                for data in self._buffer:
                    await stream.send(data)
                if self._ended:
                    await stream.end()
            except TransportError:
                # The server may have answered (and stopped reading) already: its response
                # says how the attempt went, and headers() reads it.
                return
            attempt.replayed = True
            if self._overflow and self._stream is None:
                self._commit(attempt)  # the buffer overflowed while this attempt was opening

    def _failed(self, attempt: _Attempt, code: StatusCode, pushback: float | None) -> None:
        """``attempt`` ended before response headers: retry, hedge on, or end the call."""
        if attempt in self._live:
            self._live.remove(attempt)
        if self._decided.done():
            if attempt.stream is not None and attempt.stream is not self._stream:
                attempt.stream.close()
            return
        planner = self._planner
        delay = planner.decide(code, pushback)
        if planner.hedging:
            if code not in planner.policy.non_fatal_status_codes:  # type: ignore[union-attr]
                self._commit(attempt)  # a fatal status ends the call, whatever is in flight
                return
            if pushback is not None and pushback < 0:
                planner.commit()  # A6: no further hedges; those in flight may still win
        elif delay is None:
            self._commit(attempt)  # no retry: this outcome is the call's
            return
        if self._last is not None and self._last.stream is not None:
            self._last.stream.close()
        self._last = attempt  # kept open until another attempt starts: it may be the outcome
        if delay is not None and planner.may_start():
            if delay > 0:
                self._schedule(delay)
            else:
                self._start_attempt()
        elif self._timer is not None and not planner.may_start():
            self._timer.cancel()
            self._timer = None
        if not self._live and self._timer is None and not self._decided.done():
            self._commit(attempt)  # nothing in flight or to come: the last failure stands

    def _commit(self, attempt: _Attempt) -> None:
        """Make ``attempt`` the call's; cancel the rest. The first decision is final."""
        if self._decided.done():
            return
        self._planner.commit()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for other in self._live:
            if other is not attempt:
                if other.stream is not None:
                    other.stream.close()
                if other.task is not None and other.task is not asyncio.current_task():
                    other.task.cancel()
        self._live = [attempt] if attempt in self._live else []
        last, self._last = self._last, None
        if last is not None and last is not attempt and last.stream is not None:
            last.stream.close()
        self._stream = attempt.stream
        if attempt.stream is None:
            self._error = attempt.error or StreamClosed()
        self._buffer = []
        self._decided.set_result(None)

    async def _wait(self) -> Any:
        if not self._decided.done():
            await asyncio.shield(self._decided)
        if self._error is not None:
            raise self._error
        return self._stream

    # ------------------------------------------------------------------ Stream, for the call

    @property
    def trailers_only(self) -> bool:
        return self._stream is not None and bool(self._stream.trailers_only)

    @property
    def status(self) -> int:
        return 0 if self._stream is None else int(self._stream.status)

    async def headers(self) -> Headers:
        stream = await self._wait()
        headers: Headers = await stream.headers()
        return headers

    async def read(self) -> bytes:
        data: bytes = await (await self._wait()).read()
        return data

    def read_nowait(self) -> bytes | None:
        if self._error is not None:
            raise self._error
        if self._stream is None:
            return None
        data: bytes | None = self._stream.read_nowait()
        return data

    async def read_parts(self) -> list[bytes]:
        parts: list[bytes] = await (await self._wait()).read_parts()
        return parts

    def read_parts_nowait(self) -> list[bytes] | None:
        if self._error is not None:
            raise self._error
        if self._stream is None:
            return None
        parts: list[bytes] | None = self._stream.read_parts_nowait()
        return parts

    async def trailers(self) -> Headers:
        trailers: Headers = await (await self._wait()).trailers()
        throttle = self._planner.plan.throttle
        if throttle is not None:
            for name, value in trailers:
                if name == b"grpc-status" and value == b"0":
                    throttle.record_success()
        return trailers

    async def send(self, data: bytes, *, end_stream: bool = False) -> None:
        if self._decided.done():
            await (await self._wait()).send(data, end_stream=end_stream)
            return
        async with self._lock:
            if self._decided.done():  # committed while we waited for the lock
                await (await self._wait()).send(data, end_stream=end_stream)
                return
            if data:
                self._buffered += len(data)
                if self._buffered > self._planner.plan.buffer_limit:
                    self._on_overflow()
                    if self._decided.done():
                        await (await self._wait()).send(data, end_stream=end_stream)
                        return
                self._buffer.append(data)
            self._ended = self._ended or end_stream
            for attempt in list(self._live):
                if attempt.replayed:
                    # A failed attempt's task decides what comes next.
                    with contextlib.suppress(TransportError):
                        await attempt.stream.send(data, end_stream=end_stream)

    def _on_overflow(self) -> None:
        """The request outgrew the buffer: commit to the attempt furthest along (A6)."""
        self._overflow = True
        self._planner.commit()
        replayed = [a for a in self._live if a.replayed]
        if replayed:
            self._commit(replayed[0])
        elif not self._live and self._last is not None:
            # Waiting to retry, with nothing in flight: no retry can carry this request now,
            # so the last failure stands.
            self._commit(self._last)

    async def end(self) -> None:
        await self.send(b"", end_stream=True)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._planner.commit()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for attempt in self._live:
            if attempt.stream is not None:
                attempt.stream.close()
            if attempt.task is not None and attempt.task is not asyncio.current_task():
                attempt.task.cancel()
        for stream in (self._stream, self._last.stream if self._last else None):
            if stream is not None:
                stream.close()
        if not self._decided.done():
            self._error = StreamClosed()
            self._decided.set_result(None)
