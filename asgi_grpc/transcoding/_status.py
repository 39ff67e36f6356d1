"""gRPC status -> HTTP status and the JSON error body (google.rpc.Status in canonical JSON).

The mapping is the one google/rpc/code.proto documents per code, as grpc-gateway
(``runtime.HTTPStatusFromCode``) and Envoy's gRPC-JSON transcoder apply it.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from google.protobuf import any_pb2, json_format
from google.rpc import status_pb2  # type: ignore[import-untyped, unused-ignore]

from .._core import StatusCode

# json.dumps separators: compact, as Envoy and grpc-gateway print.
COMPACT = (",", ":")

HTTP_STATUS: dict[StatusCode, int] = {
    StatusCode.OK: 200,
    StatusCode.CANCELLED: 499,  # "Client Closed Request" (nginx), as code.proto says
    StatusCode.UNKNOWN: 500,
    StatusCode.INVALID_ARGUMENT: 400,
    StatusCode.DEADLINE_EXCEEDED: 504,
    StatusCode.NOT_FOUND: 404,
    StatusCode.ALREADY_EXISTS: 409,
    StatusCode.PERMISSION_DENIED: 403,
    StatusCode.RESOURCE_EXHAUSTED: 429,
    StatusCode.FAILED_PRECONDITION: 400,
    StatusCode.ABORTED: 409,
    StatusCode.OUT_OF_RANGE: 400,
    StatusCode.UNIMPLEMENTED: 501,
    StatusCode.INTERNAL: 500,
    StatusCode.UNAVAILABLE: 503,
    StatusCode.DATA_LOSS: 500,
    StatusCode.UNAUTHENTICATED: 401,
}


def status_dict(code: StatusCode, message: str, details_bin: bytes | None = None) -> dict[str, Any]:
    """``{"code", "message", "details"}`` (the last two only when not empty). Details come from
    ``grpc-status-details-bin`` (a serialized google.rpc.Status): each Any in canonical JSON
    when its type is in the default descriptor pool (its _pb2 module imported), else
    ``{"@type", "value": base64}``."""
    details: list[Any] = []
    if details_bin:
        status = status_pb2.Status()
        try:
            status.ParseFromString(details_bin)
        except Exception:  # a servicer's garbage is not the client's problem; keep the rest
            status.Clear()
        details = [_detail(any_) for any_ in status.details]
        message = message or status.message
    # Canonical JSON of google.rpc.Status: empty fields are left out (as Envoy prints it).
    out: dict[str, Any] = {"code": code.value[0]}
    if message:
        out["message"] = message
    if details:
        out["details"] = details
    return out


def _detail(any_: any_pb2.Any) -> Any:
    try:
        return json_format.MessageToDict(any_)
    except (TypeError, KeyError, json_format.Error):  # the type is not in the pool
        return {"@type": any_.type_url, "value": base64.b64encode(any_.value).decode()}


def error_body(code: StatusCode, message: str, details_bin: bytes | None = None) -> bytes:
    return json.dumps(
        status_dict(code, message, details_bin), ensure_ascii=False, separators=COMPACT
    ).encode()
