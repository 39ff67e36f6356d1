"""The httpx face of the client transport: ``GrpcTransport(httpx.AsyncBaseTransport)``.

``httpx.AsyncClient(transport=GrpcTransport(...))`` sends requests over our own HTTP/2
connections (:mod:`._connection`, :mod:`._pool`): full duplex, trailers kept, streams
multiplexed without an artificial limit, flow control that never starves. A response's
``extensions["grpc_stream"]`` is the :class:`~._connection.Stream`: read trailers from it, and
write request messages through it while the response streams (full duplex).

Two ways in, one implementation:

- ``handle_async_request`` (what ``AsyncClient.send`` calls): the httpx-shaped path. The
  request body is sent inline when it is bytes; when it is an async stream, a background task
  pumps it while the response is read. ``request.extensions["grpc_duplex"] = callback`` sends
  the headers only and leaves the request open: ``callback(stream)`` is called as soon as the
  stream exists (before the response headers, which a gRPC server may hold back until it has
  a first message to send), and the caller writes request messages through that stream.
- ``transport.pool(url)`` returns the :class:`~._pool.ConnectionPool` for an origin; a channel
  calls ``pool.request(...)`` / ``pool.open_stream(...)`` directly, skipping httpx's per-request
  machinery (about a millisecond of CPU per call) on its hot path.

Errors are the classes of :mod:`._transport_errors`, which are also httpx exceptions
(``ConnectError`` is an ``httpx.ConnectError``, resets and terminations are
``httpx.RemoteProtocolError``)::

    TransportError          .status (gRPC StatusCode), .retryable
    ├── ConnectError        UNAVAILABLE, retryable
    ├── ConnectionTerminated  UNAVAILABLE (retryable when a GOAWAY proves it unprocessed)
    ├── StreamReset         .error_code; CANCEL -> CANCELLED, REFUSED_STREAM -> UNAVAILABLE...
    └── StreamClosed        CANCELLED (used after close)

TLS follows httpx: ``verify`` is ``True`` (system/certifi CAs), ``False``, or an
``ssl.SSLContext`` (use ``load_cert_chain`` on it for client certificates). ALPN is set to
``h2`` only on the context in use (a context you pass is changed in place).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable

import httpx

from .._core import Headers
from ._address import Address, TCPAddress, UnixAddress
from ._connection import ConnectionSettings, Stream
from ._pool import ConnectionPool
from ._transport_errors import StreamClosed, TransportError

__all__ = ["GrpcResponseStream", "GrpcTransport"]

# Connection-specific headers (RFC 9113 8.2.2) and what becomes a pseudo-header.
_SKIP_HEADERS = frozenset(
    {
        b"host",
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",
    }
)


def make_ssl_context(verify: ssl.SSLContext | bool = True) -> ssl.SSLContext:
    """An SSL context with httpx's ``verify`` meaning and ALPN ``h2`` only."""
    context = httpx.create_ssl_context(verify=verify)
    context.set_alpn_protocols(["h2"])
    return context


class GrpcTransport(httpx.AsyncBaseTransport):
    """An httpx transport for gRPC over HTTP/2 (h2c prior knowledge on ``http://``, TLS with
    ALPN h2 on ``https://``).

    ``uds`` sends every request to that unix socket (like httpx's own ``uds``). ``settings``
    tunes windows and frame sizes; ``server_hostname`` overrides the TLS name check;
    ``max_connections`` bounds connections per origin (default: as many as streams need).
    """

    def __init__(
        self,
        *,
        verify: ssl.SSLContext | bool = True,
        uds: str | None = None,
        settings: ConnectionSettings | None = None,
        server_hostname: str | None = None,
        max_connections: int | None = None,
    ) -> None:
        self._verify = verify
        self._ssl_context: ssl.SSLContext | None = None
        self._uds = uds
        self._settings = settings or ConnectionSettings()
        self._server_hostname = server_hostname
        self._max_connections = max_connections
        self._pools: dict[tuple[bytes, bytes, int | None], ConnectionPool] = {}

    # -- pools -------------------------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = make_ssl_context(self._verify)
        return self._ssl_context

    def pool(self, url: httpx.URL | str) -> ConnectionPool:
        """The pool for ``url``'s origin (created on first use)."""
        if isinstance(url, str):
            url = httpx.URL(url)
        key = (url.raw_scheme, url.raw_host, url.port)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = self._make_pool(url)
        return pool

    def share_pool(
        self, url: httpx.URL | str, pool: ConnectionPool, *, replace: bool = False
    ) -> ConnectionPool:
        """The pool for ``url``'s origin: the one already there (unless ``replace``), else
        ``pool`` from now on. A channel hands its pool here so that requests through its
        ``http_client`` share its connections."""
        if isinstance(url, str):
            url = httpx.URL(url)
        key = (url.raw_scheme, url.raw_host, url.port)
        if replace:
            self._pools[key] = pool
            return pool
        return self._pools.setdefault(key, pool)

    def _make_pool(self, url: httpx.URL) -> ConnectionPool:
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"gRPC needs http:// or https://, not {scheme}://")
        tls = scheme == "https"
        port = url.port or (443 if tls else 80)
        address: Address = (
            UnixAddress(self._uds) if self._uds is not None else TCPAddress(url.host, port)
        )
        authority = url.netloc.decode("ascii")
        return ConnectionPool(
            [address],
            authority=authority,
            ssl_context=self.ssl_context() if tls else None,
            server_hostname=self._server_hostname,
            settings=self._settings,
            max_connections=self._max_connections,
        )

    # -- httpx -------------------------------------------------------------------------------

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        pool = self.pool(url)
        headers: Headers = [
            (b":method", request.method.encode("ascii")),
            (b":scheme", pool.scheme),
            (b":path", url.raw_path),
            (b":authority", request.headers.get("host", pool.authority).encode("ascii")),
        ]
        headers += [
            (name.lower(), value)
            for name, value in request.headers.raw
            if name.lower() not in _SKIP_HEADERS
        ]
        duplex: Callable[[Stream], object] | None = request.extensions.get("grpc_duplex")
        body: bytes | None = None
        if not duplex and isinstance(request.stream, httpx.ByteStream):
            body = request.content
        stream = await pool.open_raw(headers, end_stream=body == b"")
        pump: asyncio.Task[None] | None = None
        try:
            if duplex is not None:
                duplex(stream)
            if body:
                try:
                    await stream.send(body, end_stream=True)
                except TransportError:
                    # A complete response before the whole request (RFC 9113 8.1): our half
                    # was reset, and the response stands.
                    if not stream.ended:
                        raise
            elif body is None and duplex is None:
                pump = asyncio.ensure_future(_pump(request, stream))
            response_headers = await stream.headers()
        except BaseException:
            if pump is not None:
                pump.cancel()
            stream.close()
            raise
        status = stream.status
        return httpx.Response(
            status,
            headers=[(n, v) for n, v in response_headers if n[:1] != b":"],
            stream=GrpcResponseStream(stream, pump),
            extensions={"grpc_stream": stream, "http_version": b"HTTP/2"},
            request=request,
        )

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.aclose()


async def _pump(request: httpx.Request, stream: Stream) -> None:
    """Send a streaming request body while the response is read (full duplex)."""
    body = request.stream
    assert isinstance(body, httpx.AsyncByteStream)
    try:
        async for chunk in body:
            if chunk:
                await stream.send(chunk)
        await stream.end()
    except StreamClosed:
        pass  # the response side closed the stream: nothing more to send
    except Exception:
        # A body that fails must not look like a complete request to the server.
        stream.close()
    finally:
        await body.aclose()


class GrpcResponseStream(httpx.AsyncByteStream):
    """The response body of a gRPC stream; closing it early resets the stream (CANCEL)."""

    def __init__(self, stream: Stream, pump: asyncio.Task[None] | None = None) -> None:
        self.stream = stream
        self._pump = pump

    async def __aiter__(self) -> AsyncIterator[bytes]:
        read = self.stream.read
        while chunk := await read():
            yield chunk

    async def aclose(self) -> None:
        # Either the body was not read to the end (the caller gave up on the call: reset), or
        # the response is over, and request data still being pumped has nobody to go to.
        if self._pump is not None and not self._pump.done():
            self._pump.cancel()
        self.stream.close()
