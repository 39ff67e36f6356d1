"""The client transport's errors: what can go wrong below gRPC, translated once.

Everything the HTTP/2 layer (sockets, TLS, h2) raises to its callers is one of these. Each
carries the gRPC status a channel should report (:attr:`TransportError.status`), following
gRPC's ``doc/http-grpc-status-mapping.md`` and ``PROTOCOL-HTTP2.md``. They also derive from the
matching httpx exception, so code above :class:`~asgi_grpc.client._transport.GrpcTransport`
that knows only httpx still catches them::

    TransportError (httpx.TransportError)       base; .status, .retryable
    ├── ConnectError (httpx.ConnectError)       no connection: refused, DNS, TLS, no ALPN h2,
    │                                           timeout. UNAVAILABLE; retryable (nothing sent)
    ├── ConnectionTerminated                    the connection ended under an open stream: peer
    │   (httpx.RemoteProtocolError)             closed, GOAWAY, HTTP/2 protocol error.
    │                                           UNAVAILABLE (INTERNAL for our protocol errors);
    │                                           retryable only when the peer's GOAWAY proves
    │                                           the stream was never processed
    ├── StreamReset (httpx.RemoteProtocolError) the stream was reset: .error_code; status
    │                                           per the RST_STREAM table (CANCEL -> CANCELLED,
    │                                           REFUSED_STREAM -> UNAVAILABLE and retryable,
    │                                           ENHANCE_YOUR_CALM -> RESOURCE_EXHAUSTED...),
    │                                           or RESOURCE_EXHAUSTED when we refused a
    │                                           response header block over our limit
    └── StreamClosed                            we used a stream after closing or ending it:
                                                CANCELLED (a local programming error)
"""

from __future__ import annotations

import httpx
from h2.errors import ErrorCodes

from .._core import StatusCode

__all__ = [
    "ConnectError",
    "ConnectionTerminated",
    "StreamClosed",
    "StreamReset",
    "TransportError",
    "reset_status",
]


class TransportError(httpx.TransportError):
    """Base of every transport failure; ``status`` is the gRPC status it reports."""

    status: StatusCode = StatusCode.UNAVAILABLE
    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class ConnectError(TransportError, httpx.ConnectError):
    """No HTTP/2 connection could be made. Nothing was sent, so retrying is safe."""

    retryable = True


class ConnectionTerminated(TransportError, httpx.RemoteProtocolError):
    """The connection ended while the stream was open.

    ``retryable`` is true only for streams the peer's GOAWAY names as never processed
    (stream id above ``last_stream_id``): the pool re-sends those on another connection.
    ``error_code`` is the GOAWAY's HTTP/2 error code, if there was one.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        error_code: int | None = None,
        status: StatusCode = StatusCode.UNAVAILABLE,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.error_code = error_code
        self.status = status


# RST_STREAM error code -> gRPC status (doc/http-grpc-status-mapping.md); anything else INTERNAL.
_RESET_STATUS = {
    ErrorCodes.REFUSED_STREAM: StatusCode.UNAVAILABLE,
    ErrorCodes.CANCEL: StatusCode.CANCELLED,
    ErrorCodes.ENHANCE_YOUR_CALM: StatusCode.RESOURCE_EXHAUSTED,
    ErrorCodes.INADEQUATE_SECURITY: StatusCode.PERMISSION_DENIED,
}


def reset_status(error_code: int) -> StatusCode:
    """The gRPC status for a stream reset with ``error_code``."""
    for code, status in _RESET_STATUS.items():
        if code == error_code:
            return status
    return StatusCode.INTERNAL


class StreamReset(TransportError, httpx.RemoteProtocolError):
    """The peer reset the stream (RST_STREAM) with ``error_code``.

    REFUSED_STREAM means the peer did not process it: retryable.
    """

    def __init__(
        self, error_code: int, message: str | None = None, *, status: StatusCode | None = None
    ) -> None:
        try:
            name = ErrorCodes(error_code).name
        except ValueError:
            name = hex(error_code)
        super().__init__(message or f"stream reset by peer: {name}")
        self.error_code = error_code
        # ``status`` overrides the table when we reset the stream ourselves for a reason
        # (a response header block over our limit: RESOURCE_EXHAUSTED).
        self.status = reset_status(error_code) if status is None else status
        self.retryable = error_code == ErrorCodes.REFUSED_STREAM


class StreamClosed(TransportError):
    """The stream was used after this side closed, cancelled or ended it."""

    status = StatusCode.CANCELLED

    def __init__(self, message: str = "stream closed") -> None:
        super().__init__(message)
