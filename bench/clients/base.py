"""The interface every client driver implements; the workload loops use nothing else.

A driver wraps ONE channel (one HTTP/2 connection) to the server, created in the running event
loop. Drivers check the size of what comes back, so a broken peer fails loudly instead of
producing a fast, meaningless figure.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol


class PingPong(Protocol):
    async def round_trip(self, payload: bytes) -> None:
        """Write one request on the open bidi call and read its one response."""


class ClientDriver(Protocol):
    async def unary(self, payload: bytes) -> None:
        """One Unary call echoing ``payload``."""

    async def server_stream(self, count: int, size: int) -> int:
        """One ServerStream call of ``count`` responses of ``size`` bytes; returns how many came."""

    async def client_stream(self, count: int, payload: bytes) -> int:
        """One ClientStream call sending ``count`` requests of ``payload``; returns how many the
        server counted."""

    def bidi(self) -> AbstractAsyncContextManager[PingPong]:
        """Open a Bidi call; closing the context half-closes it and drains it to its status."""

    async def close(self) -> None:
        """Close the channel."""


class EchoMismatch(AssertionError):
    """The server answered, but not with what the echo service must send."""


def check_size(what: str, got: int, expected: int) -> None:
    if got != expected:
        raise EchoMismatch(f"{what}: expected {expected} bytes/messages, got {got}")
