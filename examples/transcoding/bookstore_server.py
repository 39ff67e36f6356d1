"""HTTP/JSON transcoding and OpenAPI (README: "HTTP/JSON transcoding and OpenAPI").

    pip install 'asgi_grpc[transcoding]'
    python examples/transcoding/bookstore_server.py --bind 127.0.0.1:50051

serves ``bookstore.v1.Bookstore`` over gRPC and, from the ``google.api.http`` annotations in
bookstore.proto, over HTTP/JSON on the same port, with the OpenAPI 3.1 document at
``/openapi.json`` (the proto comments included)::

    curl -X POST localhost:50051/v1/shelves/1/books -d '{"title": "Dune", "isbn": "9780441013593"}'
    curl localhost:50051/v1/shelves/1/books/1
    curl localhost:50051/v1/shelves/1/books?pageSize=10
    curl localhost:50051/v1/shelves/1/books:watch         # one JSON object per line
    curl localhost:50051/openapi.json

Also: ``asgi-grpc serve bookstore_server:app --app-dir examples/transcoding``.

The proto is compiled at start-up with grpcio-tools into a temporary directory, with
``--include_source_info --descriptor_set_out`` as well: the generated ``_pb2`` modules keep no
comments, the descriptor set does, and the OpenAPI document takes them from it.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import importlib
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import google.api
import grpc
from grpc_tools import protoc
from hypercorn.asyncio import serve

from asgi_grpc.server import GrpcApp, grpc_config
from asgi_grpc.transcoding import HttpJson

HERE = Path(__file__).resolve().parent
_OUT = Path(tempfile.mkdtemp(prefix="bookstore_"))
atexit.register(shutil.rmtree, _OUT, True)
DESCRIPTOR_SET = _OUT / "bookstore.binpb"


def _compile() -> tuple[Any, Any]:
    googleapis = Path(google.api.__path__[0]).parent.parent  # google/api/*.proto ship there
    well_known = Path(protoc.__file__).parent / "_proto"
    status = protoc.main(
        [
            "protoc",
            f"-I{HERE}",
            f"-I{googleapis}",
            f"-I{well_known}",
            f"--python_out={_OUT}",
            f"--grpc_python_out={_OUT}",
            "--include_source_info",
            f"--descriptor_set_out={DESCRIPTOR_SET}",
            str(HERE / "bookstore.proto"),
        ]
    )
    if status != 0:
        raise RuntimeError("protoc failed on bookstore.proto")
    sys.path.insert(0, str(_OUT))
    return importlib.import_module("bookstore_pb2"), importlib.import_module("bookstore_pb2_grpc")


pb2, pb2_grpc = _compile()


class Bookstore(pb2_grpc.BookstoreServicer):  # type: ignore[misc,name-defined]
    def __init__(self) -> None:
        self.books: dict[str, Any] = {}

    async def GetBook(self, request: Any, context: Any) -> Any:
        if request.name not in self.books:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no book {request.name}")
        return self.books[request.name]

    async def CreateBook(self, request: Any, context: Any) -> Any:
        book = pb2.Book()
        book.CopyFrom(request.book)
        book.name = f"{request.parent}/books/{len(self.books) + 1}"
        book.create_time.FromSeconds(1_700_000_000 + len(self.books))
        self.books[book.name] = book
        return book

    async def ListBooks(self, request: Any, context: Any) -> Any:
        books = [b for name, b in self.books.items() if name.startswith(request.parent + "/")]
        books.sort(key=lambda b: b.create_time.seconds, reverse=True)
        return pb2.ListBooksResponse(books=books[: request.page_size or None])

    async def WatchBooks(self, request: Any, context: Any) -> Any:
        for name, book in self.books.items():
            if name.startswith(request.parent + "/"):
                yield book


app = GrpcApp(
    http_json=HttpJson(
        descriptor_set=DESCRIPTOR_SET.read_bytes(), title="Bookstore", version="1.0.0"
    )
)
pb2_grpc.add_BookstoreServicer_to_server(Bookstore(), app)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default="127.0.0.1:50051")
    args = parser.parse_args()
    asyncio.run(serve(app, grpc_config(bind=[args.bind])))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
