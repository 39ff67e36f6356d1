"""The whole-response extension (server/_types.py ``RESPONSE_EXTENSION``): one message standing
for a response's start, body and trailers must put on the wire exactly the frames the three
messages put there (headers validated and stripped as Hypercorn does them, the body in the same
DATA frames, trailers with END_STREAM, RST_STREAM NO_ERROR for a request still open), fall back to
the stock path where that path would not send trailers, and GrpcApp must use it only when its
``send`` is the server's own (a middleware in front sees the ordinary messages)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from hyperframe.frame import DataFrame, Frame, HeadersFrame, RstStreamFrame

from asgi_grpc import method_handlers_generic_handler, unary_unary_rpc_method_handler
from asgi_grpc.server import GrpcApp
from asgi_grpc.server._hypercorn import GrpcH2Protocol
from asgi_grpc.server._types import RESPONSE_EXTENSION

from .helpers import RawH2, Receive, Scope, Send, grpc_frame, grpc_request_headers, serve, trailers

HEADERS = [(b"content-type", b"application/grpc"), (b"x-padded", b"  kept inside  ")]
TRAILERS = [*trailers(3, "bad thing"), (b"x-end", b" done ")]
LARGE = bytes(range(256)) * 400  # 100 KiB: several DATA frames


async def whole_or_three(scope: Scope, receive: Receive, send: Send) -> None:
    """``/whole/...`` answers with the extension's message, ``/three/...`` with the three
    messages it stands for; ``.../large`` with a 100 KiB message in two parts; ``.../early``
    before reading the request (which the client leaves open)."""
    kind, _, what = scope["path"].strip("/").partition("/")
    if what != "early":
        while (await receive()).get("more_body"):
            pass
    body = [grpc_frame(b"small")] if what != "large" else [grpc_frame(LARGE)[:5], LARGE]
    if kind == "whole":
        offer = scope["extensions"][RESPONSE_EXTENSION]
        assert offer["owner"] == id(send.__self__)  # type: ignore[attr-defined]
        await send(
            {"type": RESPONSE_EXTENSION, "headers": HEADERS, "body": body, "trailers": TRAILERS}
        )
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS, "trailers": True})
    for index, part in enumerate(body):
        await send({"type": "http.response.body", "body": part, "more_body": index < len(body) - 1})
    await send({"type": "http.response.trailers", "headers": TRAILERS, "more_trailers": False})


async def frames_of(client: RawH2, stream_id: int) -> list[tuple[str, Any, frozenset[str]]]:
    """The stream's frames up to its end: (kind, decoded headers or data or error code, flags)."""
    seen: list[tuple[str, Any, frozenset[str]]] = []
    while True:
        frame: Frame = await client.frame()
        if frame.stream_id != stream_id:
            continue
        flags = frozenset(frame.flags)
        if isinstance(frame, HeadersFrame):
            seen.append(("HEADERS", client.headers(frame), flags))
        elif isinstance(frame, DataFrame):
            seen.append(("DATA", bytes(frame.data), flags))
            client.connection.acknowledge_received_data(len(frame.data), stream_id)
            client.flush()
        elif isinstance(frame, RstStreamFrame):
            seen.append(("RST_STREAM", frame.error_code, flags))
            return seen
        if "END_STREAM" in flags:
            return seen


@pytest.mark.parametrize("what", ["small", "large"])
async def test_same_frames_as_the_three_messages(what: str) -> None:
    async with serve(whole_or_three) as server:
        client = await RawH2.connect(server.port)
        try:
            answers = []
            for kind in ("three", "whole"):
                stream_id = client.request(f"/{kind}/{what}", grpc_frame(b"hello"))
                answers.append(await frames_of(client, stream_id))
        finally:
            await client.close()
    three, whole = answers
    assert whole == three
    assert three[0] == (
        "HEADERS",
        {b":status": b"200", b"content-type": b"application/grpc", b"x-padded": b"kept inside"},
        frozenset({"END_HEADERS"}),
    )
    assert b"".join(data for kind, data, _ in three if kind == "DATA") == b"".join(
        [grpc_frame(b"small")] if what == "small" else [grpc_frame(LARGE)]
    )
    assert three[-1] == (
        "HEADERS",
        {b"grpc-status": b"3", b"grpc-message": b"bad thing", b"x-end": b"done"},
        frozenset({"END_HEADERS", "END_STREAM"}),
    )


async def test_early_response_resets_the_open_request_as_before() -> None:
    async with serve(whole_or_three) as server:
        client = await RawH2.connect(server.port)
        try:
            answers = []
            for kind in ("three", "whole"):
                stream_id = client.request(f"/{kind}/early", grpc_frame(b"hi"), end=False)
                seen = []
                while not seen or seen[-1][0] != "RST_STREAM":
                    frame = await client.frame()
                    if frame.stream_id == stream_id:
                        kind_name = type(frame).__name__
                        seen.append(
                            (kind_name.removesuffix("Frame").upper(), frozenset(frame.flags))
                        )
                        if isinstance(frame, RstStreamFrame):
                            seen[-1] = ("RST_STREAM", frame.error_code)
                answers.append(seen)
        finally:
            await client.close()
    three, whole = answers
    assert whole == three
    assert three[-1] == ("RST_STREAM", 0)  # NO_ERROR: the response is complete


async def test_without_te_trailers_the_stock_path_answers() -> None:
    """Stock Hypercorn sends no trailers to a request without ``te: trailers`` (the body ends
    the stream): the extension's message does the same."""
    async with serve(whole_or_three) as server:
        client = await RawH2.connect(server.port)
        try:
            answers = []
            for kind in ("three", "whole"):
                stream_id = client.connection.get_next_available_stream_id()
                headers = [h for h in grpc_request_headers(f"/{kind}/small") if h[0] != b"te"]
                client.connection.send_headers(stream_id, headers)
                client.connection.send_data(stream_id, grpc_frame(b"x"), end_stream=True)
                client.flush()
                answers.append(await frames_of(client, stream_id))
        finally:
            await client.close()
    three, whole = answers
    assert whole == three
    assert [(kind, flags) for kind, _, flags in three] == [
        ("HEADERS", frozenset({"END_HEADERS"})),
        ("DATA", frozenset({"END_STREAM"})),
    ]


def metadata_app() -> GrpcApp:
    async def unary(request: bytes, context: Any) -> bytes:
        await context.send_initial_metadata((("x-initial", "1"),)) if request == b"early" else None
        context.set_trailing_metadata((("x-trailing", "2"),))
        return request * 2

    app = GrpcApp()
    app.add_generic_rpc_handlers(
        (method_handlers_generic_handler("t.T", {"U": unary_unary_rpc_method_handler(unary)}),)
    )
    return app


def header_adding(app: Any, seen: list[str]) -> Any:
    """A middleware that adds a response header: it must see ordinary ASGI messages."""

    async def middleware(scope: Any, receive: Any, send: Any) -> None:
        async def wrapped(message: Any) -> None:
            seen.append(message["type"])
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message["headers"], (b"x-middleware", b"yes")]}
            await send(message)

        await app(scope, receive, wrapped)

    return middleware


@pytest.mark.parametrize("wrapped", [False, True], ids=["bare", "behind-middleware"])
@pytest.mark.parametrize("request_", [b"r" * 70_000, b"early"], ids=["large", "initial-metadata"])
async def test_grpc_app_unary_response(
    wrapped: bool, request_: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    # Which responses took the one-step path (the protocol's side of the extension).
    whole: list[int] = []
    one_step = GrpcH2Protocol.respond

    async def respond(self: GrpcH2Protocol, stream_id: int, *args: Any) -> None:
        whole.append(stream_id)
        await one_step(self, stream_id, *args)

    monkeypatch.setattr(GrpcH2Protocol, "respond", respond)
    app = header_adding(metadata_app(), seen) if wrapped else metadata_app()
    async with serve(app) as server, grpc.aio.insecure_channel(server.target) as channel:
        call = channel.unary_unary("/t.T/U")(request_, timeout=10)
        assert await call == request_ * 2
        initial = dict(await call.initial_metadata())
        trailing = dict(await call.trailing_metadata())
        assert await call.code() == grpc.StatusCode.OK
    assert trailing["x-trailing"] == "2"
    assert ("x-initial" in initial) == (request_ == b"early")
    # Not behind a middleware, nor once the handler has sent its initial metadata itself.
    assert len(whole) == (0 if wrapped or request_ == b"early" else 1)
    if wrapped:
        assert initial["x-middleware"] == "yes"
        assert RESPONSE_EXTENSION not in seen
        assert seen[0] == "http.response.start"
        assert seen[-1] == "http.response.trailers"
    else:
        assert "x-middleware" not in initial
