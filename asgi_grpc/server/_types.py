"""The ASGI vocabulary the server speaks, in one place."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIReceive = Callable[[], Awaitable[Message]]
ASGISend = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, ASGIReceive, ASGISend], Awaitable[None]]

# asgi_grpc's own scope extensions, offered by our Hypercorn protocol and the in-memory transport:
# trailers sent before ``http.response.start`` become one trailers-only HEADERS frame; and
# ``{"future": callable}``, a future done when the stream closes, so an app that stopped calling
# ``receive()`` (its request buffer is full) still learns that the client went away.
TRAILERS_ONLY_EXTENSION = "asgi_grpc.trailers_only"
STREAM_CLOSED_EXTENSION = "asgi_grpc.stream_closed"
