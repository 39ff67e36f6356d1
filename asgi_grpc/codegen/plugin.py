"""``protoc-gen-asgi_grpc``: the protoc plugin (works with protoc, ``grpc_tools.protoc`` and buf).

protoc runs the plugin with a serialized ``CodeGeneratorRequest`` on stdin and reads a
``CodeGeneratorResponse`` from stdout. For every file it was asked to generate that declares
services, the plugin writes ``<name>_pb2_asgi_grpc.py`` and ``<name>_pb2_asgi_grpc.pyi``.

Options (``--asgi_grpc_opt=a,b`` or ``--asgi_grpc_out=a,b:DIR``):

- ``no_pyi``: do not write the ``.pyi`` stubs.
- ``embed_messages``: make the module self-contained: it carries the file's descriptor and
  defines the message classes itself (in asgi_grpc's own descriptor pool, see
  :data:`asgi_grpc.codegen.runtime.POOL`) instead of importing a ``_pb2`` module. asgi_grpc uses
  this for the health and reflection protos it ships, so they never clash with grpcio's copies
  of the same messages in the default pool. Files with imports cannot be embedded.
"""

from __future__ import annotations

import sys
from typing import BinaryIO

from google.protobuf.compiler import plugin_pb2

from ._embed import render_embedded_module, render_embedded_stub
from ._model import from_file_proto, message_index
from ._render import SUFFIX, render_module, render_stub

_OPTIONS = frozenset({"no_pyi", "embed_messages"})

# descriptor.proto's Edition values: the plugin reads only services and message names, which
# every edition spells the same way.
_EDITION_PROTO2 = 998
_EDITION_2024 = 1001


def generate(request: plugin_pb2.CodeGeneratorRequest) -> plugin_pb2.CodeGeneratorResponse:
    """The whole plugin as a pure function: request in, response out (errors in ``.error``)."""
    response = plugin_pb2.CodeGeneratorResponse()
    response.supported_features = (
        plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
        | plugin_pb2.CodeGeneratorResponse.FEATURE_SUPPORTS_EDITIONS
    )
    response.minimum_edition = _EDITION_PROTO2
    response.maximum_edition = _EDITION_2024
    options = {item.strip() for item in request.parameter.split(",") if item.strip()}
    unknown = sorted(options - _OPTIONS)
    if unknown:
        known = ", ".join(sorted(_OPTIONS))
        response.error = f"unknown option(s) {', '.join(unknown)}; known: {known}"
        return response
    by_name = {file.name: file for file in request.proto_file}
    messages = message_index(request.proto_file)
    for name in request.file_to_generate:
        proto = by_name[name]
        if not proto.service:
            continue  # like grpcio-tools' plugin: no services, nothing to write
        model = from_file_proto(proto, messages)
        base = name.removesuffix(".proto").replace("-", "_") + SUFFIX
        try:
            if "embed_messages" in options:
                if proto.dependency:
                    raise ValueError("embed_messages needs a file without imports")
                source = render_embedded_module(model, proto)
                stub = render_embedded_stub(model, proto)
            else:
                source, stub = render_module(model), render_stub(model)
        except ValueError as error:  # what cannot be generated: protoc reports it, per file
            response.error = f"{name}: {error}"
            return response
        response.file.add(name=f"{base}.py", content=source)
        if "no_pyi" not in options:
            response.file.add(name=f"{base}.pyi", content=stub)
    return response


def main(stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> int:
    """Console entry point: read the request from stdin, write the response to stdout."""
    source = stdin if stdin is not None else sys.stdin.buffer
    sink = stdout if stdout is not None else sys.stdout.buffer
    request = plugin_pb2.CodeGeneratorRequest.FromString(source.read())
    sink.write(generate(request).SerializeToString())
    sink.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
