"""The channel's gRPC-Web transport: channel option ``("asgi_grpc.grpc_web", True | "text")``.

Calls are made exactly as over gRPC; only the pool differs. :class:`WebPool` stands in for the
HTTP/2 :class:`~._pool.ConnectionPool` and hands out :class:`WebStream` objects with the same
interface as :class:`~._stream.Stream`, so the call classes run unchanged. Each call is one
plain httpx request (HTTP/1.1, or HTTP/2 with ``("asgi_grpc.grpc_web_http2", True)``):

- the request body is sent whole once the call's requests end: gRPC-Web is half-duplex, so
  client streaming works and bidi streaming gets its responses after the last request;
- the response is presented as gRPC: its content type as ``application/grpc``, grpc-web-text
  base64-decoded, and the trailer frame taken out of the body and handed over as trailers
  (a trailers-only response has its status in the headers, as over gRPC).
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from base64 import b64encode
from typing import Any

import httpx

from .._core import ProtocolError, StatusCode
from .._core._web import (
    TEXT_CONTENT_TYPE,
    WEB_CONTENT_TYPE,
    Base64Decoder,
    ResponseBodyReader,
    is_grpc_web_content_type,
    is_text,
)
from ._address import Address, TCPAddress
from ._transport_errors import ConnectError, ConnectionTerminated, StreamClosed

__all__ = ["WebPool", "WebStream"]

Headers = list[tuple[bytes, bytes]]

# Response bytes read ahead of the caller before the reader waits (the call's own message
# reader bounds each message; this bounds what a fast server can queue here).
READ_AHEAD = 1024 * 1024
_WEB_PROTO = WEB_CONTENT_TYPE + b"+proto"
_TEXT_PROTO = TEXT_CONTENT_TYPE + b"+proto"


class WebPool:
    """Where a gRPC-Web channel's calls go: one httpx client for one address."""

    def __init__(
        self,
        address: Address,
        *,
        secure: bool,
        authority: str,
        ssl_context: ssl.SSLContext | None,
        text: bool,
        http2: bool,
    ) -> None:
        self.authority = authority
        self._text = text
        if isinstance(address, TCPAddress):
            host = f"[{address.host}]" if ":" in address.host else address.host
            transport = httpx.AsyncHTTPTransport(
                verify=ssl_context if ssl_context is not None else True,
                # Cleartext HTTP/2 is prior knowledge (h2c); over TLS, ALPN picks.
                http1=secure or not http2,
                http2=http2,
            )
        else:
            host = "localhost"
            transport = httpx.AsyncHTTPTransport(
                uds=address.path, http1=secure or not http2, http2=http2
            )
            address = TCPAddress("localhost", 80)
        scheme = "https" if secure else "http"
        self.base_url = f"{scheme}://{host}:{address.port}"
        self._client = httpx.AsyncClient(transport=transport, timeout=None)

    @property
    def connections(self) -> list[Any]:
        return []  # connections are httpx's business; gRPC-Web has no connection state

    async def _acquire(self) -> None:
        """Channel connectivity: gRPC-Web has no connection to establish ahead of a call."""

    def _headers(self, headers: Headers, authority: bytes | None) -> Headers:
        content_type = _TEXT_PROTO if self._text else _WEB_PROTO
        out: Headers = [(b"content-type", content_type), (b"x-grpc-web", b"1")]
        if self._text:
            out.append((b"accept", b"application/grpc-web-text"))
        out.append((b"host", authority or self.authority.encode("ascii")))
        for name, value in headers:
            if name not in (b"content-type", b"te"):
                out.append((name, value))
        return out

    async def open_stream(
        self,
        path: bytes | str,
        headers: Headers,
        *,
        body: bytes = b"",
        end_stream: bool = False,
        authority: bytes | None = None,
    ) -> WebStream:
        if isinstance(path, bytes):
            path = path.decode("ascii")
        stream = WebStream(self, self.base_url + path, self._headers(headers, authority))
        if body or end_stream:
            await stream.send(body, end_stream=end_stream)
        return stream

    async def request(
        self,
        path: bytes | str,
        headers: Headers,
        body: bytes,
        *,
        attempts: int = 1,
        authority: bytes | None = None,
    ) -> WebStream:
        stream = await self.open_stream(
            path, headers, body=body, end_stream=True, authority=authority
        )
        try:
            await stream.headers()
        except BaseException:
            stream.close()
            raise
        return stream

    async def aclose(self) -> None:
        await self._client.aclose()


class WebStream:
    """One gRPC-Web call, with :class:`~._stream.Stream`'s interface."""

    def __init__(self, pool: WebPool, url: str, headers: Headers) -> None:
        self._pool = pool
        self._url = url
        self._request_headers = headers
        self._body: list[bytes] = []
        self._task: asyncio.Task[None] | None = None
        self._headers: Headers | None = None
        self._trailers: Headers | None = None
        self._status = 0
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._ended = False
        self._closed = False
        self._error: BaseException | None = None
        self._changed = asyncio.Event()  # something for a reader (headers, data, end, error)
        self._drained = asyncio.Event()  # the reader took what was read ahead
        self.trailers_only = False

    # -- state -------------------------------------------------------------------------------

    @property
    def status(self) -> int:
        return self._status

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def done(self) -> bool:
        return self._ended or self._error is not None or self._closed

    @property
    def error(self) -> BaseException | None:
        return self._error

    # -- request side ------------------------------------------------------------------------

    async def send(self, data: bytes, *, end_stream: bool = False) -> None:
        if self._closed or self._task is not None:
            raise StreamClosed("request already ended" if not self._closed else "stream closed")
        if data:
            self._body.append(data)
        if end_stream:
            self._task = asyncio.ensure_future(self._run())

    async def end(self) -> None:
        await self.send(b"", end_stream=True)

    # -- the exchange ------------------------------------------------------------------------

    async def _run(self) -> None:
        client = self._pool._client
        body = b"".join(self._body)
        if self._pool._text:
            body = b64encode(body)
        request = client.build_request(
            "POST", self._url, headers=self._request_headers, content=body
        )
        self._body.clear()
        try:
            response = await client.send(request, stream=True)
        except httpx.ConnectError as exc:
            self._fail(ConnectError(f"failed to connect to {self._pool.base_url}: {exc}"))
            return
        except httpx.HTTPError as exc:
            self._fail(ConnectionTerminated(f"gRPC-Web request failed: {exc!r}"))
            return
        try:
            await self._read_response(response)
        except httpx.HTTPError as exc:
            self._fail(ConnectionTerminated(f"gRPC-Web response failed: {exc!r}"))
        except ProtocolError as exc:
            self._fail(exc)
        finally:
            await response.aclose()

    async def _read_response(self, response: httpx.Response) -> None:
        self._status = response.status_code
        headers: Headers = [(b":status", str(response.status_code).encode())]
        web = False
        text = False
        for name, value in response.headers.raw:
            name = name.lower()
            if name == b"content-type" and is_grpc_web_content_type(value):
                web = True
                text = is_text(value)
                # Presented as gRPC, so the call checks it as it checks any response.
                prefix = TEXT_CONTENT_TYPE if text else WEB_CONTENT_TYPE
                value = b"application/grpc" + value[len(prefix) :]
            elif name == b"grpc-status":
                self.trailers_only = True
            headers.append((name, value))
        self._headers = headers
        self._wake()
        if self.trailers_only or not web:
            self._ended = True
            self._wake()
            return
        decoder = Base64Decoder() if text else None
        reader = ResponseBodyReader()
        async for chunk in response.aiter_raw():
            data = reader.feed(decoder.feed(chunk) if decoder is not None else chunk)
            if data:
                self._chunks.append(data)
                self._buffered += len(data)
                self._wake()
                if self._buffered > READ_AHEAD:
                    self._drained.clear()
                    await self._drained.wait()
        if decoder is not None:
            decoder.close()
        if not reader.complete:
            raise ProtocolError(
                StatusCode.INTERNAL, "gRPC-Web response ended in the middle of a frame"
            )
        self._trailers = reader.trailers
        self._ended = True
        self._wake()

    def _fail(self, error: BaseException) -> None:
        if self._error is None and not self._ended:
            self._error = error
        self._wake()

    def _wake(self) -> None:
        self._changed.set()

    async def _wait(self) -> None:
        if self._task is None:
            raise StreamClosed("the request was not sent")
        self._changed.clear()
        await self._changed.wait()

    def _check(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise StreamClosed()

    # -- response side -----------------------------------------------------------------------

    async def headers(self) -> Headers:
        while self._headers is None:
            self._check()
            await self._wait()
        return self._headers

    def _take(self) -> bytes:
        chunks = self._chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._buffered = 0
        self._drained.set()
        return data

    async def read(self) -> bytes:
        while True:
            if self._chunks:
                return self._take()
            if self._ended:
                return b""
            self._check()
            await self._wait()

    def read_nowait(self) -> bytes | None:
        if self._chunks:
            return self._take()
        if self._ended:
            return b""
        self._check()
        return None

    async def read_parts(self) -> list[bytes]:
        """:meth:`read` as the call reads it (see ``Stream.read_parts``)."""
        data = await self.read()
        return [data] if data else []

    def read_parts_nowait(self) -> list[bytes] | None:
        data = self.read_nowait()
        return None if data is None else [data] if data else []

    async def trailers(self) -> Headers:
        self._chunks.clear()
        self._buffered = 0
        self._drained.set()
        while not self._ended:
            self._check()
            await self._wait()
        if self.trailers_only and self._headers is not None:
            return self._headers
        return self._trailers if self._trailers is not None else []

    # -- ending ------------------------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        task = self._task
        if task is not None and not task.done():
            task.cancel()  # closes the response (HTTP/1.1: the connection; HTTP/2: the stream)
        self._chunks.clear()
        self._drained.set()
        self._wake()

    async def aclose(self) -> None:
        self.close()
