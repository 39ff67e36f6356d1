"""The apps ``asgi-grpc serve --server hypercorn|uvicorn|pyvoy`` runs for tests/asgi_servers.

- ``interop``: the interop TestService (tests/interop/service.py) on a GrpcApp. Its
  CompressedRequest check needs to know whether a request arrived compressed; the server runs in
  another process (pyvoy: inside Envoy) than the test's wire tap, so the app reads that from the
  request body itself, as plain ASGI middleware in front of the GrpcApp (:class:`WireProbe`).
- ``hardening``: raw-bytes methods for the server checks (test_hardening.py):
  ``/h.H/Unary`` echoes; ``/h.H/Slow`` sleeps the milliseconds its request names, then echoes;
  ``/h.H/Hold`` (client streaming) never reads its requests until cancelled;
  ``/h.H/Early`` (client streaming) answers INVALID_ARGUMENT at once, without reading.
"""

from __future__ import annotations

import asyncio
import gzip
import sys
import zlib
from pathlib import Path
from typing import Any

# Inside Envoy (pyvoy) sys.executable is not this venv's python, and tests.protoc finds grpclib's
# protoc plugin next to it.
_venv_python = Path(sys.prefix) / "bin" / "python"
if not (Path(sys.executable).parent / "protoc-gen-grpclib_python").exists() and (
    _venv_python.exists()
):
    sys.executable = str(_venv_python)

import asgi_grpc  # noqa: E402
from asgi_grpc.server import GrpcApp  # noqa: E402
from tests.interop._protos import load_protos  # noqa: E402
from tests.interop.service import make_servicer  # noqa: E402

_MAX_REMEMBERED = 4096


class WireProbe:
    """ASGI middleware recording, for each request message, its inflated bytes and whether it
    arrived compressed (the 5-byte prefix's flag); ``compressed(serialized)`` claims the oldest
    record with those bytes, as tests.interop.wire.WireTap.request_compressed does."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._seen: list[tuple[bytes, bool]] = []

    def compressed(self, serialized: bytes) -> bool | None:
        for index, (payload, flag) in enumerate(self._seen):
            if payload == serialized:
                del self._seen[index]
                return flag
        return None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        encoding = dict(scope["headers"]).get(b"grpc-encoding", b"identity")
        buffer = bytearray()

        async def probed_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                buffer.extend(message.get("body", b""))
                self._parse(buffer, encoding)
            return message

        await self.app(scope, probed_receive, send)

    def _parse(self, buffer: bytearray, encoding: bytes) -> None:
        while len(buffer) >= 5:
            length = int.from_bytes(buffer[1:5], "big")
            if len(buffer) < 5 + length:
                return
            flag, payload = buffer[0], bytes(buffer[5 : 5 + length])
            del buffer[: 5 + length]
            if flag:
                try:
                    payload = (
                        gzip.decompress(payload)
                        if encoding == b"gzip"
                        else zlib.decompress(payload)
                    )
                except (OSError, zlib.error, EOFError):
                    continue
            self._seen.append((payload, bool(flag)))
            del self._seen[:-_MAX_REMEMBERED]


def _interop() -> Any:
    protos = load_protos()
    grpc_app = GrpcApp()
    probe = WireProbe(grpc_app)
    servicer = make_servicer(protos, asgi_grpc, probe.compressed)
    protos.services.add_TestServiceServicer_to_server(servicer, grpc_app)
    return probe


interop = _interop()


def _hardening() -> GrpcApp:
    async def unary(request: bytes, context: Any) -> bytes:
        return request

    async def slow(request: bytes, context: Any) -> bytes:
        await asyncio.sleep(int(request or b"0") / 1000)
        return request

    async def hold(request_iterator: Any, context: Any) -> bytes:
        await asyncio.Event().wait()
        return b""

    async def early(request_iterator: Any, context: Any) -> bytes:
        await context.abort(asgi_grpc.StatusCode.INVALID_ARGUMENT, "early")
        return b""

    return GrpcApp(
        [
            asgi_grpc.method_handlers_generic_handler(
                "h.H",
                {
                    "Unary": asgi_grpc.unary_unary_rpc_method_handler(unary),
                    "Slow": asgi_grpc.unary_unary_rpc_method_handler(slow),
                    "Hold": asgi_grpc.stream_unary_rpc_method_handler(hold),
                    "Early": asgi_grpc.stream_unary_rpc_method_handler(early),
                },
            )
        ]
    )


hardening = _hardening()
