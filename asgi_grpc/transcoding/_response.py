"""The HTTP side of a transcoded call: the inner gRPC response (headers, framed messages,
trailers) collected and written as JSON, NDJSON for server streaming, or a google.rpc.Status."""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from .._core import (
    IDENTITY,
    STATUS_DETAILS_KEY,
    MessageReader,
    ProtocolError,
    Status,
    StatusCode,
    decode_bin,
    decompress,
    parse_trailers,
)
from ..server._types import ASGISend
from ..server._types import Message as AsgiMessage
from ._routes import Binding
from ._status import COMPACT, HTTP_STATUS, error_body, status_dict

JSON = b"application/json"
NDJSON = b"application/x-ndjson"
OCTETS = b"application/octet-stream"
# What json_format raises for a message it cannot print (an Any whose type it cannot find).
_UNPRINTABLE = (TypeError, KeyError, ValueError, json_format.Error)

# Response headers of the inner gRPC call that are not metadata.
_NOT_METADATA = frozenset(
    {
        b"content-type",
        b"content-length",
        b"grpc-encoding",
        b"grpc-accept-encoding",
        b"grpc-status",
        b"grpc-message",
        STATUS_DETAILS_KEY.encode(),
    }
)


class CallResponse:
    """Collects the inner gRPC response and writes the HTTP one."""

    def __init__(
        self, binding: Binding, send: ASGISend, emit_unpopulated: bool, array: bool = False
    ) -> None:
        self.binding = binding
        self.array = array  # server streaming as one JSON array (Envoy's form), not NDJSON
        self.outer = send
        self.emit_unpopulated = emit_unpopulated
        self.streaming = binding.rpc.server_streaming
        self.reader = MessageReader(max_length=None)  # our own server's output, already bounded
        self.encoding = IDENTITY
        self.metadata: list[tuple[bytes, bytes]] = []
        self.messages: list[Message] = []
        self.started = False  # the outer response (streaming only, before finish)
        self.sent_any = False  # a JSON message of the stream went out
        self.trailers: list[tuple[bytes, bytes]] | None = None
        # A message protobuf could not print as JSON (an Any of a type this process lacks):
        # the HTTP answer becomes INTERNAL, whatever the call's own status.
        self.unprintable: str | None = None

    async def send(self, message: AsgiMessage) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            for name, value in message.get("headers", ()):
                if name == b"grpc-encoding":
                    self.encoding = value.decode("latin-1")
                elif name not in _NOT_METADATA:
                    self.metadata.append((name, value))
        elif kind == "http.response.body":
            for compressed, payload in self.reader.feed(message.get("body", b"")):
                data = decompress(self.encoding, payload, None) if compressed else payload
                response = self.binding.rpc.response_class()
                response.ParseFromString(data)
                if self.streaming:
                    await self._stream(response)
                else:
                    self.messages.append(response)
        elif kind == "http.response.trailers":
            self.trailers = (self.trailers or []) + list(message.get("headers", ()))

    def _http_body(self, response: Message) -> Any:
        field_name = self.binding.response_body
        return getattr(response, field_name) if field_name else response

    async def _stream(self, response: Message) -> None:
        raw = self.binding.raw_response
        if not self.started:
            self.started = True
            # google.api.HttpBody messages: their data back to back, typed by the first one.
            if raw:
                content_type = self._http_body(response).content_type or OCTETS
            else:
                content_type = JSON if self.array else NDJSON
            await self.outer(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", _latin1(content_type)), *self.metadata],
                }
            )
        if raw:
            data = self._http_body(response).data
            await self.outer({"type": "http.response.body", "body": data, "more_body": True})
            return
        if self.unprintable is not None:
            return  # the stream already ended with an error line
        try:
            result = self._json(response)
        except _UNPRINTABLE as exc:
            self.unprintable = f"the response cannot be printed as JSON: {exc}"
            return
        if self.array:
            chunk = (b"," if self.sent_any else b"[") + _dumps(result)
        else:
            chunk = _dumps({"result": result}) + b"\n"
        self.sent_any = True
        await self.outer({"type": "http.response.body", "body": chunk, "more_body": True})

    def _json(self, response: Message) -> Any:
        data = json_format.MessageToDict(
            response, always_print_fields_with_no_presence=self.emit_unpopulated
        )
        field_name = self.binding.response_body
        if not field_name:
            return data
        field = response.DESCRIPTOR.fields_by_name[field_name]
        if field.json_name in data:
            return data[field.json_name]
        # Unset: its JSON default, as if printed with every field.
        full = json_format.MessageToDict(response, always_print_fields_with_no_presence=True)
        return full.get(field.json_name)

    async def finish(self) -> None:
        trailers = self.trailers or []
        status = parse_trailers(trailers)
        details = next((v for k, v in trailers if k == STATUS_DETAILS_KEY.encode()), None)
        metadata = self.metadata + [(k, v) for k, v in trailers if k not in _NOT_METADATA]
        if self.unprintable is not None:
            status = Status(
                code=StatusCode.INTERNAL, details=self.unprintable, metadata=status.metadata
            )
            details = None
        if self.started:
            end = b""
            if self.binding.raw_response:
                pass  # raw bytes have no room for a status
            elif self.array:
                # A failure leaves the array open: a client's JSON parser then fails rather
                # than take the messages so far for the whole list (Envoy closes it).
                if status.code == StatusCode.OK:
                    end = b"]" if self.sent_any else b"[]"
            elif status.code != StatusCode.OK:
                error = status_dict(status.code, status.details, _bin(details))
                end = _dumps({"error": error}) + b"\n"
            await self.outer({"type": "http.response.body", "body": end, "more_body": False})
            return
        if status.code != StatusCode.OK:
            body = error_body(status.code, status.details, _bin(details))
            await reply(self.outer, HTTP_STATUS[status.code], body, metadata)
            return
        if self.streaming:  # no message at all: an empty stream
            if self.binding.raw_response:
                await reply(self.outer, 200, b"", metadata, content_type=OCTETS)
            elif self.array:
                await reply(self.outer, 200, b"[]", metadata)
            else:
                await reply(self.outer, 200, b"", metadata, content_type=NDJSON)
            return
        if len(self.messages) != 1:
            body = error_body(StatusCode.INTERNAL, "the call answered no message")
            await reply(self.outer, 500, body, metadata)
            return
        if self.binding.raw_response:
            http_body = self._http_body(self.messages[0])
            content_type = _latin1(http_body.content_type or OCTETS)
            await reply(self.outer, 200, http_body.data, metadata, content_type=content_type)
            return
        try:
            result = self._json(self.messages[0])
        except _UNPRINTABLE as exc:
            body = error_body(StatusCode.INTERNAL, f"the response cannot be printed as JSON: {exc}")
            await reply(self.outer, 500, body, metadata)
            return
        body = json.dumps(result, ensure_ascii=False, separators=COMPACT).encode()
        await reply(self.outer, 200, body, metadata)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=COMPACT).encode()


def _latin1(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1", "replace")


def _bin(value: bytes | None) -> bytes | None:
    if value is None:
        return None
    try:
        return decode_bin(value)
    except ProtocolError:
        return None


async def reply(
    send: ASGISend,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]],
    *,
    content_type: bytes = JSON,
    head: bool = False,
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", b"%d" % len(body)),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": b"" if head else body, "more_body": False})


async def error(send: ASGISend, status: int, code: StatusCode, message: str) -> None:
    await reply(send, status, error_body(code, message), [])


async def method_not_allowed(send: ASGISend, allowed: tuple[str, ...]) -> None:
    body = error_body(
        StatusCode.UNIMPLEMENTED, "method not allowed; allowed: " + ", ".join(allowed)
    )
    await reply(send, 405, body, [(b"allow", ", ".join(allowed).encode())])
