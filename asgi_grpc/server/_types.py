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
# ``{"owner": id(o)}``: an app whose ``receive`` is a bound method of that object ``o`` (the
# server's own: no middleware in between that could rewrite bodies) may mark it ``"wanted"``; its
# ``http.request``
# events then carry the body's pieces under this key (bytes, views of immutable bytes, or
# bytearrays) and an empty ``body``, instead of the pieces joined into ``body``. A gRPC message
# spread over large DATA frames is then joined once, by the message reader.
BODY_PARTS_EXTENSION = "asgi_grpc.body_parts"
# ``{"owner": id(o), "push": push, "flush": flush}``, offered with the same ownership rule:
# ``push(data)`` queues response body bytes (``bytes``) of a started, open response for the
# writer at once, without an await, and returns True; False (nothing queued) when the server
# wants the bytes as an ``http.response.body`` instead (it would write or wait for flow control
# after them, or the stream is gone). ``flush()`` must follow in the same loop turn, after a
# batch of pushes: it writes what they queued (or wakes the writer for it). A sync handler's
# responses reach the socket this way, from the loop callback that hands them over, without
# waking the call's task or the connection's writer for each.
BODY_SINK_EXTENSION = "asgi_grpc.body_sink"
# ``{"owner": id(o), "listen": slot}``, with the same ownership rule: the app may set
# ``slot.callback`` (a callable without arguments, that must not raise); the server then calls
# it, in the step that brings it, whenever request input arrives (a body chunk, the body's end,
# the stream's close), and the app may take that input at once with ``o.receive_nowait()``
# (``receive()``'s next event, or None when it would wait). A streaming call's request buffer
# takes each message in the step that brings it this way, instead of a loop turn later in a
# task waiting on ``receive()``. The server drops the callback when the stream closes.
BODY_LISTEN_EXTENSION = "asgi_grpc.body_listen"
# ``{"owner": id(o)}``, with the same ownership rule: the app may send one message of this type,
# ``{"type": RESPONSE_EXTENSION, "headers": ..., "body": [bytes, ...], "trailers": ...}``, instead
# of a whole response's ``http.response.start`` (status 200, ``trailers: True``), its body (the
# parts in order, the last one ending it) and its ``http.response.trailers``, before any of those.
# The server sends it as it would send them, in one step of the app's task instead of three trips
# through its generic ASGI send path; a server with one stream open on the connection also writes
# it to the socket in that step, instead of waking its writer for it. A unary response this way.
RESPONSE_EXTENSION = "asgi_grpc.response"
