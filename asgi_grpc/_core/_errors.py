"""The sans-IO core's one error type.

Everything the core rejects (a malformed frame, an oversize message, a bad header, an unknown
encoding) raises :class:`ProtocolError`, which carries the gRPC status that the peer should see.
Adapters catch it once, at the boundary, and turn it into trailers (server) or an
``AioRpcError`` (client).
"""

from __future__ import annotations

from ._status import StatusCode


class ProtocolError(Exception):
    """A gRPC protocol violation, with the status code that reports it."""

    def __init__(self, code: StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"ProtocolError({self.code.name}, {self.message!r})"
