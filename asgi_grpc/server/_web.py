"""gRPC-Web (grpc/grpc doc/PROTOCOL-WEB.md) on the ordinary gRPC call path, and its CORS.

A gRPC-Web request is a gRPC request whose response cannot use HTTP trailers (browsers never see
them) and may travel over HTTP/1.1. :class:`WebCall` adapts one such request to what
``GrpcApp``'s call path expects, so every handler, interceptor, limit and status works unchanged:

- the scope it hands on offers ``http.response.trailers`` (and asgi_grpc's trailers-only
  extension), whatever the real server offers;
- ``send`` turns ``http.response.trailers`` into the body's last frame, flagged ``0x80``, holding
  the trailers as an HTTP/1 header block; trailers sent before any message (an error before the
  call produced anything) go out as the response headers of an empty body, as the spec allows;
  the response's content type is the web one, and CORS headers are added;
- for ``application/grpc-web-text`` each response frame is base64-encoded on its own (with its
  padding: the spec lets a server flush padded chunks), and the request body is base64-decoded
  incrementally in ``receive``; bad base64 ends the call INTERNAL.

Plain gRPC requests never come here: ``GrpcApp`` checks for ``application/grpc`` first.
"""

from __future__ import annotations

from base64 import b64encode
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .._core import ProtocolError
from .._core._web import Base64Decoder, is_text, trailer_frame
from ._types import TRAILERS_ONLY_EXTENSION, ASGIReceive, ASGISend, Message, Scope

__all__ = ["GrpcWebConfig", "WebCall", "preflight_headers"]

# Request headers a gRPC-Web client sends (and so asks leave for in a preflight).
DEFAULT_ALLOW_HEADERS = (
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "grpc-encoding",
    "grpc-accept-encoding",
    "authorization",
)
# Response headers a browser script may read only when they are exposed: the status (in the
# headers of a trailers-only response) and the encoding. Initial metadata names are added per
# response, from the headers actually sent.
ALWAYS_EXPOSED = (b"grpc-status", b"grpc-message", b"grpc-status-details-bin", b"grpc-encoding")
# Exposing these is pointless (CORS-safelisted, or hop-by-hop/server-added).
_NOT_EXPOSED = frozenset(
    {b"content-type", b"content-length", b"date", b"server", b"transfer-encoding", b"vary"}
)

Origins = Sequence[str] | str | Callable[[str], bool] | None


@dataclass(frozen=True, kw_only=True)
class GrpcWebConfig:
    """gRPC-Web serving and CORS for :class:`~asgi_grpc.server.GrpcApp`.

    gRPC-Web is served by default; CORS is off (no ``Access-Control-*`` headers, preflights not
    answered) until ``cors_origins`` is set, so a page from another origin cannot call the app
    unless the app says it may.

    ``cors_origins``: ``"*"`` (any origin), a list of origins (``"https://app.example"``), or a
    callable ``origin -> bool``. ``cors_allow_credentials`` lets the browser send cookies and
    HTTP auth (the allowed origin is then echoed, never ``*``). ``cors_allow_headers``: the
    request headers a preflight may ask for; ``None`` allows whatever the preflight asks
    (gRPC metadata keys are free-form). ``cors_expose_headers``: response headers exposed on
    top of the gRPC ones and the metadata keys each response carries. ``cors_max_age``: how long
    (seconds) a browser may cache a preflight's answer.
    """

    enabled: bool = True
    cors_origins: Origins = None
    cors_allow_credentials: bool = False
    cors_allow_headers: Sequence[str] | None = None
    cors_expose_headers: Sequence[str] = ()
    cors_max_age: int = 7200

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> GrpcWebConfig:
        """From server options ``asgi_grpc.grpc_web`` (bool) and ``asgi_grpc.cors_origins``
        (``"*"``, or origins separated by commas, or a list)."""
        origins = options.get("asgi_grpc.cors_origins")
        if isinstance(origins, str) and origins != "*":
            origins = [o.strip() for o in origins.split(",") if o.strip()]
        return cls(
            enabled=bool(options.get("asgi_grpc.grpc_web", True)),
            cors_origins=origins or None,
            cors_allow_credentials=bool(options.get("asgi_grpc.cors_allow_credentials", False)),
        )

    def allowed(self, origin: bytes | None) -> bytes | None:
        """The ``Access-Control-Allow-Origin`` value for ``origin``, or None (no CORS)."""
        origins = self.cors_origins
        if origin is None or origins is None:
            return None
        if origins == "*":
            return origin if self.cors_allow_credentials else b"*"
        text = origin.decode("latin-1")
        if callable(origins):
            return origin if origins(text) else None
        return origin if text in origins else None

    def cors_headers(self, origin: bytes | None) -> list[tuple[bytes, bytes]]:
        allow = self.allowed(origin)
        if allow is None:
            return []
        headers = [(b"access-control-allow-origin", allow)]
        if allow != b"*":
            headers.append((b"vary", b"origin"))
        if self.cors_allow_credentials:
            headers.append((b"access-control-allow-credentials", b"true"))
        return headers


def preflight_headers(
    config: GrpcWebConfig, origin: bytes | None, requested: bytes | None
) -> list[tuple[bytes, bytes]] | None:
    """The headers of a 204 answering a CORS preflight, or None if ``origin`` is not allowed."""
    headers = config.cors_headers(origin)
    if not headers:
        return None
    if config.cors_allow_headers is None:
        allow = requested or b""
    else:
        allow = ", ".join((*DEFAULT_ALLOW_HEADERS, *config.cors_allow_headers)).encode("latin-1")
    headers += [
        (b"access-control-allow-methods", b"POST, OPTIONS"),
        (b"access-control-max-age", b"%d" % config.cors_max_age),
        (b"content-length", b"0"),
    ]
    if allow:
        headers.append((b"access-control-allow-headers", allow))
    return headers


class WebCall:
    """The scope, ``receive`` and ``send`` of one gRPC-Web request, as gRPC ones."""

    __slots__ = (
        "_content_type",
        "_cors",
        "_decoder",
        "_expose",
        "_failed",
        "_receive",
        "_send",
        "_started",
        "scope",
        "text",
    )

    def __init__(
        self,
        scope: Scope,
        receive: ASGIReceive,
        send: ASGISend,
        content_type: bytes,
        config: GrpcWebConfig,
        origin: bytes | None,
    ) -> None:
        self.text = is_text(content_type)
        # The response speaks the request's dialect: same text/binary form and codec suffix.
        self._content_type = content_type.split(b";", 1)[0].strip()
        extensions = dict(scope.get("extensions") or {})
        extensions["http.response.trailers"] = {}
        extensions[TRAILERS_ONLY_EXTENSION] = {}
        self.scope = dict(scope)
        self.scope["extensions"] = extensions
        self._receive = receive
        self._send = send
        self._cors = config.cors_headers(origin)
        self._expose = [h.lower().encode("latin-1") for h in config.cors_expose_headers]
        self._started = False
        self._decoder = Base64Decoder()
        self._failed = False

    # ------------------------------------------------------------------ request side

    async def receive(self) -> Message:
        event = await self._receive()
        if not self.text or event["type"] != "http.request":
            return event
        if self._failed:  # the body already failed to decode: the rest is dropped
            return {"type": "http.request", "body": b"", "more_body": event.get("more_body")}
        more = event.get("more_body", False)
        try:
            body = self._decoder.feed(event.get("body") or b"")
            if not more:
                self._decoder.close()
        except ProtocolError:
            self._failed = True
            raise
        return {"type": "http.request", "body": body, "more_body": more}

    # ------------------------------------------------------------------ response side

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.body":
            body = message.get("body")
            if body:  # the end of the body is the trailer frame, sent with the trailers
                await self._send(
                    {"type": "http.response.body", "body": self._encode(body), "more_body": True}
                )
        elif kind == "http.response.trailers":
            if not self._started:
                # Trailers-only: the status in the headers, an empty body (PROTOCOL-WEB.md).
                await self._start(message["headers"])
                await self._send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            frame = trailer_frame(message["headers"])
            await self._send(
                {"type": "http.response.body", "body": self._encode(frame), "more_body": False}
            )
        elif kind == "http.response.start":
            await self._start(message["headers"])
        else:
            await self._send(message)

    async def _start(self, grpc_headers: list[tuple[bytes, bytes]]) -> None:
        self._started = True
        headers = [(b"content-type", self._content_type)]
        expose = list(ALWAYS_EXPOSED)
        for name, value in grpc_headers:
            if name == b"content-type":
                continue
            headers.append((name, value))
            if name not in _NOT_EXPOSED and name not in expose:
                expose.append(name)
        if self._cors:
            headers += self._cors
            headers.append((b"access-control-expose-headers", b", ".join(expose + self._expose)))
        await self._send({"type": "http.response.start", "status": 200, "headers": headers})

    def _encode(self, data: bytes) -> bytes:
        return b64encode(data) if self.text else data
