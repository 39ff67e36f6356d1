"""Blocking calls one after another on one channel, with headers that repeat and headers that
change between calls: every call sees exactly its own metadata, status and details. Both sides
of asgi_grpc encode the header lists they repeat, and decode the blocks they see again, from a
cache while the HPACK table stands still (asgi_grpc/_hpack.py), so this is what must not change.
Each scenario runs against grpcio and asgi_grpc (the ``grpc`` fixture): blocking server and
blocking client of the same library, then that client against grpcio's server.
"""

from __future__ import annotations

from concurrent import futures
from types import ModuleType
from typing import Any

from .conftest import method, serve_blocking


def _calls(grpc: ModuleType, server_grpc: ModuleType) -> None:
    def echo(request: bytes, context: Any) -> bytes:
        sent = {key: value for key, value in context.invocation_metadata() if key.startswith("x-")}
        n = int(request)
        context.send_initial_metadata((("x-initial", sent.get("x-key", "none")),))
        context.set_trailing_metadata((("x-parity", str(n % 2)), ("x-n", request.decode())))
        if n % 7 == 3:
            context.abort(server_grpc.StatusCode.FAILED_PRECONDITION, f"no {n}")
        return request + b"!"

    handler = server_grpc.unary_unary_rpc_method_handler(echo)
    server, target = serve_blocking(server_grpc, {"Echo": handler})
    try:
        with grpc.insecure_channel(target) as channel:
            call = channel.unary_unary(method("Echo"))
            for n in range(60):
                key = f"new-{n}" if n % 3 == 0 else "same"
                timeout = 30.0 if n % 4 == 0 else None
                request = str(n).encode()
                state = call.future(request, timeout=timeout, metadata=(("x-key", key),))
                if n % 7 == 3:
                    assert state.code() == grpc.StatusCode.FAILED_PRECONDITION
                    assert state.details() == f"no {n}"
                else:
                    assert state.result() == request + b"!"
                    assert state.code() == grpc.StatusCode.OK
                assert dict(state.initial_metadata()) == {"x-initial": key}
                trailing = {k: v for k, v in state.trailing_metadata() if k.startswith("x-")}
                assert trailing == {"x-parity": str(n % 2), "x-n": str(n)}
    finally:
        server.stop(0)


def test_repeated_and_changing_headers_each_call_its_own(grpc: ModuleType) -> None:
    _calls(grpc, grpc)


def test_the_same_against_grpcio_server(grpc: ModuleType) -> None:
    """The client's caches against another HPACK encoder (grpc-core's) and decoder."""
    import grpc as grpcio

    _calls(grpc, grpcio)


def _big_headers(grpc: ModuleType, server_grpc: ModuleType) -> None:
    options = [("grpc.max_metadata_size", 256 * 1024)]

    def size(request: bytes, context: Any) -> bytes:
        sent = dict(context.invocation_metadata())
        return str(len(sent.get("x-big", ""))).encode()

    handler = server_grpc.unary_unary_rpc_method_handler(size)
    server, target = serve_blocking(
        server_grpc, {"Size": handler}, futures.ThreadPoolExecutor(2), options
    )
    try:
        with grpc.insecure_channel(target, options=options) as channel:
            call = channel.unary_unary(method("Size"))
            # 40,000 bytes of metadata: a HEADERS frame and CONTINUATION frames (frames are
            # 16 KiB at most), twice, then a small block again on the same connection.
            for length in (40_000, 40_001, 3):
                assert call(b"", metadata=(("x-big", "v" * length),)) == str(length).encode()
    finally:
        server.stop(0)


def test_request_headers_over_several_frames(grpc: ModuleType) -> None:
    _big_headers(grpc, grpc)


def test_request_headers_over_several_frames_to_grpcio(grpc: ModuleType) -> None:
    import grpc as grpcio

    _big_headers(grpc, grpcio)
