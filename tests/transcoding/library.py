"""The annotated test service: compiled with grpcio-tools at import (with source info, for the
OpenAPI comments), and an async servicer for it."""

from __future__ import annotations

import asyncio
import importlib
import sys
import tempfile
from pathlib import Path
from typing import Any

import google.api
import grpc
from google.api import httpbody_pb2
from google.protobuf import any_pb2, empty_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_tools import protoc

PROTOS = Path(__file__).parent / "protos"
PROTO = "transcode/v1/library.proto"
_OUT = Path(tempfile.mkdtemp(prefix="asgi_grpc_transcode_"))
DESCRIPTOR_SET = _OUT / "library.binpb"
# googleapis-common-protos ships its .proto files next to the _pb2 modules.
GOOGLEAPIS = Path(google.api.__path__[0]).parent.parent
WELL_KNOWN = Path(protoc.__file__).parent / "_proto"


def _compile() -> None:
    for proto in ("transcode/v1/mixed.proto",):  # no source info needed
        args = [
            "protoc",
            f"-I{PROTOS}",
            f"-I{GOOGLEAPIS}",
            f"-I{WELL_KNOWN}",
            f"--python_out={_OUT}",
        ]
        if protoc.main([*args, str(PROTOS / proto)]) != 0:
            raise RuntimeError(f"protoc failed on {proto}")
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{GOOGLEAPIS}",
        f"-I{WELL_KNOWN}",
        f"--python_out={_OUT}",
        f"--grpc_python_out={_OUT}",
        "--include_source_info",
        "--include_imports",
        f"--descriptor_set_out={DESCRIPTOR_SET}",
        str(PROTOS / PROTO),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed on the transcoding test proto")
    sys.path.insert(0, str(_OUT))


_compile()
pb2: Any = importlib.import_module("transcode.v1.library_pb2")
pb2_grpc: Any = importlib.import_module("transcode.v1.library_pb2_grpc")
mixed_pb2: Any = importlib.import_module("transcode.v1.mixed_pb2")
SERVICE = "transcode.v1.Library"


class Library:
    def __init__(self) -> None:
        self.gate = asyncio.Event()  # StreamBooks with page_size 99 waits on it after one book
        self.cancelled: list[str] = []  # methods whose handler was cancelled

    async def GetShelf(self, request: Any, context: Any) -> Any:
        if request.name == "shelves/missing":
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no shelf {request.name}")
        return pb2.Shelf(name=request.name, theme="history", user_id=request.user_id)

    async def CreateBook(self, request: Any, context: Any) -> Any:
        book = pb2.Book()
        book.CopyFrom(request.book)
        book.name = f"{request.parent}/books/{request.request_id or 'new'}"
        return book

    async def UpdateBook(self, request: Any, context: Any) -> Any:
        return request

    async def ListBooks(self, request: Any, context: Any) -> Any:
        count = request.page_size or 2
        books = [pb2.Book(name=f"{request.parent}/books/{i}", page_count=i) for i in range(count)]
        return pb2.ListBooksResponse(books=books, next_page_token="next")

    async def StreamBooks(self, request: Any, context: Any) -> Any:
        if request.parent == "shelves/missing":
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such shelf")
        for i in range(request.page_size or 3):
            if i == 1 and request.page_size == 99:
                await self.gate.wait()
                return
            if i == 1 and request.fail_after_first:
                await context.abort(_code(request.fail_after_first), "stream broke")
            yield pb2.Book(name=f"{request.parent}/books/{i}", page_count=10**12 + i)

    async def ArchiveShelf(self, request: Any, context: Any) -> Any:
        return empty_pb2.Empty()

    async def Inspect(self, request: Any, context: Any) -> Any:
        if request.id == "unprintable":  # an Any of a type nobody here knows
            request.packed.type_url = "type.googleapis.com/not.Known"
            request.packed.value = b"\x08\x01"
        return request

    async def Fail(self, request: Any, context: Any) -> Any:
        trailing: tuple[tuple[str, Any], ...] = ()
        if request.with_details or request.with_unknown_detail:
            status = status_pb2.Status(code=request.code, message=request.message)
            if request.with_details:
                info = error_details_pb2.ErrorInfo(reason="OUT_OF_INK", domain="library.test")
                info.metadata["shelf"] = "shelves/1"
                bad = error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field="title", description="empty"
                        )
                    ]
                )
                for detail in (info, bad):
                    packed = any_pb2.Any()
                    packed.Pack(detail)
                    status.details.append(packed)
            if request.with_unknown_detail:
                status.details.append(
                    any_pb2.Any(type_url="type.googleapis.com/not.Known", value=b"\x08\x01")
                )
            trailing = (("grpc-status-details-bin", status.SerializeToString()),)
        await context.abort(_code(request.code), request.message, trailing)

    async def Whoami(self, request: Any, context: Any) -> Any:
        await context.send_initial_metadata(
            (("x-initial", "hello"), ("x-initial-bin", b"\x00\x01"))
        )
        context.set_trailing_metadata((("x-trailing", "bye"),))
        lines = [
            f"{k}: {v!r}" if isinstance(v, bytes) else f"{k}: {v}"
            for k, v in context.invocation_metadata()
        ]
        security = context.auth_context()["transport_security_type"][0].decode()
        return pb2.WhoamiResponse(metadata=lines, peer=context.peer(), security=security)

    async def Sleep(self, request: Any, context: Any) -> Any:
        try:
            await asyncio.sleep(request.duration.ToTimedelta().total_seconds())
        except asyncio.CancelledError:
            self.cancelled.append("Sleep")
            raise
        return empty_pb2.Empty()

    async def Upload(self, request_iterator: Any, context: Any) -> Any:
        titles, pages = [], 0
        async for book in request_iterator:
            titles.append(book.title)
            pages += book.page_count
        return pb2.Book(title=",".join(titles), page_count=pages)

    async def EchoRaw(self, request: Any, context: Any) -> Any:
        return httpbody_pb2.HttpBody(
            content_type=request.body.content_type,
            data=request.name.encode() + b":" + request.body.data,
        )

    async def StreamRaw(self, request: Any, context: Any) -> Any:
        yield httpbody_pb2.HttpBody(content_type="text/plain", data=request.name.encode())
        for i in range(3):
            yield httpbody_pb2.HttpBody(data=f"-{i}".encode())

    async def GrpcOnly(self, request: Any, context: Any) -> Any:
        return empty_pb2.Empty()


def _code(number: int) -> grpc.StatusCode:
    return next(code for code in grpc.StatusCode if code.value[0] == number)
