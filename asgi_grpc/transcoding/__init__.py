"""HTTP/JSON transcoding of gRPC methods (``google.api.http`` annotations) and OpenAPI 3.1.

Needs the ``transcoding`` extra (googleapis-common-protos)::

    app = GrpcApp(http_json=True)                 # or http_json=HttpJson(...)
    add_LibraryServicer_to_server(Library(), app)

or, around an existing app, ``JsonTranscoder(grpc_app, HttpJson(...))``. Requests that match a
binding are answered as JSON; gRPC requests and everything else go on to the GrpcApp (and its
``fallback``). See README.md, "HTTP/JSON transcoding and OpenAPI".
"""

from . import _deps  # noqa: F401  (first: a clear error without googleapis-common-protos)
from ._openapi import comments_from_descriptor_set, openapi_document
from ._status import HTTP_STATUS
from ._template import PathTemplate, TemplateError, parse_template
from ._transcoder import HttpJson, JsonTranscoder

__all__ = [
    "HTTP_STATUS",
    "HttpJson",
    "JsonTranscoder",
    "PathTemplate",
    "TemplateError",
    "comments_from_descriptor_set",
    "openapi_document",
    "parse_template",
]
