"""The ASGI side: an HTTP/JSON request in, a real gRPC call into the GrpcApp, JSON out.

The call re-enters the GrpcApp in process as an HTTP/2 gRPC request (content-type
``application/grpc``, ``te: trailers``, the trailers extension), so interceptors, deadlines
(``grpc-timeout``), message limits, status codes and metadata apply exactly as for a gRPC client.
The inner ``receive`` hands over the request message(s), then the outer ``receive``: a client
that goes away cancels the call as it would a gRPC call.

Client streaming (and bidi) methods take their messages from one buffered body: a JSON array
(Envoy's form) or JSON values one after another, e.g. newline-delimited (grpc-gateway's form).

Server streaming answers ``application/x-ndjson`` the grpc-gateway way: one line per message,
``{"result": <message>}``, and a failure after the first message as a last line
``{"error": <google.rpc.Status>}`` (a failure before it is an ordinary error response).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl, quote

from google.protobuf.message import Message

from .._core import (
    ProtocolError,
    StatusCode,
    decode_bin,
    decode_timeout,
    frame,
)
from ..server._types import ASGIReceive, ASGISend, Scope
from ..server._types import Message as AsgiMessage
from ._request import (
    NO_BODY,
    TranscodeError,
    build_request,
    parse_json_body,
    parse_json_stream,
)
from ._response import CallResponse, error, method_not_allowed, reply
from ._routes import Binding, NotAllowed, RouteTable, service_methods
from ._status import COMPACT, HTTP_STATUS

if TYPE_CHECKING:
    from ..server._app import GrpcApp

# Request headers that describe the HTTP exchange, not the call: never metadata (a gRPC request
# of our own gets its own content-type and te).
_NEVER = frozenset(
    {
        b"content-type",
        b"content-length",
        b"te",
        b"transfer-encoding",
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"upgrade",
        b"http2-settings",
    }
)
# ...and, unless ``headers_to_metadata`` says otherwise, these: about this HTTP response only.
_HTTP_ONLY = frozenset({b"expect", b"accept", b"accept-encoding"})
# What gRPC allows in metadata (keys; printable ASCII values): other headers are left out.
_KEY = re.compile(rb"[0-9a-z_.\-]+\Z")
_VALUE = re.compile(rb"[\x20-\x7e]*\Z")


@dataclass(frozen=True, kw_only=True)
class HttpJson:
    """Options of HTTP/JSON transcoding (``GrpcApp(http_json=HttpJson(...))``).

    ``services``: full names of services to transcode besides the methods registered one by
    one (``add_registered_method_handlers``, what generated ``add_*_to_server`` does); needed
    for services added only as generic handlers. ``openapi_path``: where the OpenAPI 3.1
    document is served (None: not served). ``descriptor_set``: a serialized
    ``FileDescriptorSet`` made with ``protoc --include_source_info --descriptor_set_out=...``,
    the source of the proto comments in the OpenAPI document (the generated _pb2 modules keep
    none). ``emit_unpopulated``: print fields at their default value (grpc-gateway's
    EmitUnpopulated). ``ignore_unknown_fields``: unknown fields in a JSON body are dropped (as
    Envoy and grpc-gateway do) rather than answered 400. ``ignore_unknown_query_parameters``:
    likewise for query parameters (Envoy's option of that name; off, a 400).
    ``headers_to_metadata``: which request headers (lower-case names) become metadata, instead
    of the default filter. ``stream_format``: server streams as grpc-gateway's NDJSON
    (``{"result": ...}`` lines, a failure as an ``{"error": ...}`` line) or as one JSON array
    of the messages, Envoy's form (a failure leaves the array unclosed).
    """

    services: tuple[str, ...] = ()
    openapi_path: str | None = "/openapi.json"
    descriptor_set: bytes | None = None
    title: str = "API"
    version: str = "0.1.0"
    emit_unpopulated: bool = False
    ignore_unknown_fields: bool = True
    ignore_unknown_query_parameters: bool = False
    headers_to_metadata: Callable[[bytes], bool] | None = field(default=None)
    stream_format: Literal["ndjson", "json-array"] = "ndjson"

    def __post_init__(self) -> None:
        if self.stream_format not in ("ndjson", "json-array"):
            raise ValueError(
                f"stream_format must be 'ndjson' or 'json-array', not {self.stream_format!r}"
            )


class JsonTranscoder:
    """HTTP/JSON -> gRPC for one GrpcApp. As an ASGI app it wraps the GrpcApp (requests that
    match no binding go on to it); ``GrpcApp(http_json=True)`` uses :meth:`handle` instead."""

    def __init__(self, app: GrpcApp, options: HttpJson | None = None) -> None:
        self.app = app
        self.options = options or HttpJson()
        self._table: RouteTable | None = None
        self._table_key: tuple[int, int] | None = None
        self._openapi: bytes | None = None

    async def __call__(self, scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
        if scope["type"] == "http" and await self.handle(scope, receive, send, owned=False):
            return
        await self.app(scope, receive, send)

    # ------------------------------------------------------------------ routes

    def routes(self) -> RouteTable:
        """The route table, rebuilt when handlers were registered since (registration usually
        ends before serving; this keeps a late ``add_*_to_server`` working)."""
        app = self.app
        key = (len(app._registered), len(app._generic))
        if self._table is None or key != self._table_key:
            methods = list(app._registered)
            for service in self.options.services:
                methods += service_methods(service)
            self._table = RouteTable.from_methods(methods)
            self._table_key = key
            self._openapi = None
        return self._table

    def openapi(self) -> dict[str, Any]:
        from ._openapi import openapi_document

        return openapi_document(
            self.routes().bindings,
            title=self.options.title,
            version=self.options.version,
            descriptor_set=self.options.descriptor_set,
            json_array=self.options.stream_format == "json-array",
        )

    # ------------------------------------------------------------------ ASGI

    async def handle(
        self, scope: Scope, receive: ASGIReceive, send: ASGISend, *, owned: bool = True
    ) -> bool:
        """Answer ``scope`` if it is ours; False to let the caller pass it on. ``owned``: the
        GrpcApp has nothing else to give it, so an unknown path is answered 404 here."""
        content_type = _header(scope["headers"], b"content-type") or b""
        if content_type.startswith(b"application/grpc"):
            return False  # gRPC and gRPC-Web are the GrpcApp's own
        raw = scope.get("raw_path")
        path = raw.decode("latin-1") if raw else quote(scope["path"])
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]  # mounted under a prefix (Starlette's Mount)
        method = scope["method"]
        table = self.routes()
        if self.options.openapi_path is not None and path == self.options.openapi_path:
            if method not in ("GET", "HEAD"):
                await method_not_allowed(send, ("GET", "HEAD"))
                return True
            if self._openapi is None:
                self._openapi = json.dumps(
                    self.openapi(), ensure_ascii=False, separators=COMPACT
                ).encode()
            await reply(send, 200, self._openapi, [], head=method == "HEAD")
            return True
        found = table.match(method, path)
        if found is None:
            if not owned:
                return False
            await error(send, 404, StatusCode.NOT_FOUND, f"no HTTP binding for {path}")
            return True
        if isinstance(found, NotAllowed):
            if not owned:
                return False  # the fallback may serve that method on that path
            await method_not_allowed(send, found.allowed)
            return True
        binding, values = found
        await self._transcode(binding, values, scope, receive, send)
        return True

    async def _transcode(
        self,
        binding: Binding,
        values: dict[tuple[str, ...], str],
        scope: Scope,
        receive: ASGIReceive,
        send: ASGISend,
    ) -> None:
        limit = self.app.config.max_receive_message_length
        body: bytes | None = None
        if binding.body:
            # Any content type is read as JSON (as Envoy and grpc-gateway do): `curl -d` sends
            # form-urlencoded by default, and a body that is not JSON gets a 400 anyway.
            body = await _read_body(scope, receive, limit)
            if body is None:
                await error(
                    send,
                    413,
                    StatusCode.RESOURCE_EXHAUSTED,
                    f"request body larger than the max receive message length ({limit})",
                )
                return
        try:
            requests = self._requests(binding, values, scope, body)
            headers = self._metadata_headers(scope["headers"])
        except TranscodeError as exc:
            await error(send, HTTP_STATUS[exc.code], exc.code, exc.message)
            return
        options = self.options
        call = CallResponse(
            binding, send, options.emit_unpopulated, options.stream_format == "json-array"
        )
        await self.app(
            _grpc_scope(scope, binding.rpc.path, headers),
            _inner_receive(b"".join(frame(r.SerializeToString()) for r in requests), receive),
            call.send,
        )
        await call.finish()

    def _requests(
        self,
        binding: Binding,
        values: dict[tuple[str, ...], str],
        scope: Scope,
        body: bytes | None,
    ) -> list[Message]:
        """The request message; for a client stream, one per JSON value of the body."""
        raw_query = scope.get("query_string", b"")
        query = parse_qsl(raw_query.decode("latin-1"), True) if raw_query else []
        bodies: list[Any] = [NO_BODY]
        if body is not None and binding.raw_request:
            return [self._raw_request(binding, values, query, scope, body)]
        if body is not None:
            if binding.rpc.client_streaming:
                bodies = parse_json_stream(body)
            else:
                bodies = [parse_json_body(body)]
        options = self.options
        return [
            build_request(
                binding.rpc.request_class,
                path_values=values,
                query=query,
                body_field=binding.body,
                body=one,
                ignore_unknown_fields=options.ignore_unknown_fields,
                ignore_unknown_query_parameters=options.ignore_unknown_query_parameters,
            )
            for one in bodies
        ]

    def _raw_request(
        self,
        binding: Binding,
        values: dict[tuple[str, ...], str],
        query: list[tuple[str, str]],
        scope: Scope,
        body: bytes,
    ) -> Message:
        """A google.api.HttpBody body: the bytes as they came, with their content type."""
        request = build_request(
            binding.rpc.request_class,
            path_values=values,
            query=query,
            body_field=binding.body,
            ignore_unknown_query_parameters=self.options.ignore_unknown_query_parameters,
        )
        target: Any = request if binding.body == "*" else getattr(request, binding.body)
        content_type = _header(scope["headers"], b"content-type")
        if content_type is not None:
            target.content_type = content_type.decode("latin-1")
        target.data = body
        return request

    def _metadata_headers(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """The HTTP request headers the call gets as metadata: all but hop-by-hop and HTTP
        framing ones and ``grpc-*`` (``grpc-timeout`` passes; ``grpc-metadata-<key>`` passes as
        ``<key>``, as grpc-gateway does), unless ``headers_to_metadata`` decides."""
        keep = self.options.headers_to_metadata
        out: list[tuple[bytes, bytes]] = [
            (b"content-type", b"application/grpc"),
            (b"te", b"trailers"),
        ]
        for name, value in headers:
            if name.startswith(b"grpc-metadata-"):
                name = name[len(b"grpc-metadata-") :]
                if name.startswith(b"grpc-"):
                    continue
            elif name.startswith(b"grpc-") and name != b"grpc-timeout":
                continue
            if name in _NEVER or not _KEY.match(name):
                continue  # (pseudo-headers, a ':' first, are not keys either)
            if keep is not None:
                if not keep(name):
                    continue
            elif name in _HTTP_ONLY:
                continue
            if name == b"grpc-timeout":
                try:
                    decode_timeout(value)
                except ProtocolError as exc:
                    raise TranscodeError(StatusCode.INVALID_ARGUMENT, exc.message)
            elif name.endswith(b"-bin"):
                try:
                    decode_bin(value)
                except ProtocolError:
                    raise TranscodeError(
                        StatusCode.INVALID_ARGUMENT, f"header {name.decode()} is not base64"
                    )
            elif not _VALUE.match(value):
                continue
            out.append((name, value))
        return out


def _grpc_scope(scope: Scope, path: str, headers: list[tuple[bytes, bytes]]) -> Scope:
    inner: Scope = {
        "type": "http",
        "asgi": scope.get("asgi", {"version": "3.0"}),
        "http_version": "2",
        "method": "POST",
        "scheme": scope.get("scheme", "http"),
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": scope.get("root_path", ""),
        "headers": headers,
        "client": scope.get("client"),
        "server": scope.get("server"),
        "extensions": {"http.response.trailers": {}},
    }
    if "state" in scope:
        inner["state"] = scope["state"]  # the auth context of a TLS connection lives there
    return inner


def _inner_receive(payload: bytes, receive: ASGIReceive) -> ASGIReceive:
    sent = False

    async def inner() -> AsgiMessage:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": payload, "more_body": False}
        while True:
            # Waits for http.disconnect: a client gone cancels the call. A body the binding
            # does not read is dropped here, never handed on: it is not gRPC framing.
            message = await receive()
            if message["type"] != "http.request":
                return message

    return inner


async def _read_body(scope: Scope, receive: ASGIReceive, limit: int | None) -> bytes | None:
    """The whole request body, or None past ``limit`` bytes (checked per chunk, so no more than
    one chunk past the limit is ever held)."""
    declared = _header(scope["headers"], b"content-length")
    if limit is not None and declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            chunks.clear()
            if message.get("more_body", False):
                await _discard(receive, max(limit, _DRAIN))
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


# Past the limit, up to this much more of a body is read and dropped (nothing is held) before
# the 413 goes out: an HTTP/1.1 client still sending would otherwise see the connection reset
# instead of the answer (httpx does). Beyond it the server answers anyway.
_DRAIN = 1 << 20


async def _discard(receive: ASGIReceive, budget: int) -> None:
    while budget > 0:
        message = await receive()
        if message["type"] != "http.request":
            return
        budget -= len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None
