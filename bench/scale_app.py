"""The serve target of ``python -m bench scale``'s h2load part: ``asgi-grpc serve
bench.scale_app:register``. Echo's Unary on raw bytes (no generated code needed: h2load sends the
same framed request every time, and the bytes of an EchoRequest echo back as a valid
EchoResponse, field 1 being ``payload`` in both)."""

from __future__ import annotations

from typing import Any

import asgi_grpc

SERVICE = "asgi_grpc.bench.Echo"


async def _unary(request: bytes, context: Any) -> bytes:
    return request


def register(app: Any) -> None:
    handler = asgi_grpc.unary_unary_rpc_method_handler(_unary)
    app.add_generic_rpc_handlers(
        [asgi_grpc.method_handlers_generic_handler(SERVICE, {"Unary": handler})]
    )
