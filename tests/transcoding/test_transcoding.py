"""HTTP/JSON transcoding end to end: httpx against a real Hypercorn serving a GrpcApp with
``http_json``, the annotated Library service (protos/transcode/v1/library.proto). Each case is
an example or rule of google/api/http.proto; JSON is checked against protobuf's own canonical
JSON (json_format), the HTTP statuses against google/rpc/code.proto's "HTTP Mapping" lines."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import ssl
from pathlib import Path
from typing import Any

import google.rpc
import grpc
import httpx
import psutil
import pytest
from google.protobuf import json_format
from openapi_spec_validator import validate
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from asgi_grpc._core import frame
from asgi_grpc.server import GrpcApp, ServerConfig
from asgi_grpc.transcoding import HttpJson, JsonTranscoder
from tests.conftest import TLS
from tests.integration.servers import in_process
from tests.transcoding.conftest import Served, library_app, serve
from tests.transcoding.library import mixed_pb2, pb2, pb2_grpc


def _code_proto_mapping() -> dict[int, int]:
    """google.rpc.Code number -> HTTP status, read from code.proto's comments."""
    text = (Path(google.rpc.__path__[0]) / "code.proto").read_text()
    pairs = re.findall(r"HTTP Mapping: (\d+)[^\n]*\n\s*[A-Z_]+ = (\d+);", text)
    return {int(code): int(http) for http, code in pairs}


CODE_TO_HTTP = _code_proto_mapping()


def canonical(message: Any) -> Any:
    return json_format.MessageToDict(message)


# ---------------------------------------------------------------- path templates


async def test_variable_with_segments_template(served: Served) -> None:
    # http.proto: `get: "/v1/{name=messages/*}"` -> GetMessage(name: "messages/123456")
    response = await served.client.get("/v1/shelves/123456")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"name": "shelves/123456", "theme": "history"}


async def test_additional_bindings(served: Served) -> None:
    response = await served.client.get("/v1/users/me/shelves/7")
    assert response.json() == {"name": "shelves/7", "theme": "history", "userId": "me"}


async def test_nested_field_path_variable_and_body_field(served: Served) -> None:
    # put: "/v1/inspect/{nested.label}/{id}" body: "payload"
    response = await served.client.put("/v1/inspect/lbl/7", json={"label": "in-body", "depth": 3})
    assert response.status_code == 200
    assert response.json() == {
        "id": "7",
        "nested": {"label": "lbl"},
        "payload": {"label": "in-body", "depth": 3},
    }


async def test_single_segment_variable_is_fully_decoded(served: Served) -> None:
    response = await served.client.get("/v1/inspect/a%2Fb%20c")
    assert response.json()["id"] == "a/b c"


async def test_double_wildcard_keeps_escaped_slash(served: Served) -> None:
    # delete: "/v1/inspect/{id}/{nested.label=**}": multi-segment -> "%2F" stays encoded.
    response = await served.client.delete("/v1/inspect/7/a/b%2Fc/d%20e")
    assert response.json() == {"id": "7", "nested": {"label": "a/b%2Fc/d e"}}
    response = await served.client.delete("/v1/inspect/8/x")
    assert response.json() == {"id": "8", "nested": {"label": "x"}}


async def test_unnamed_wildcard_and_custom_method(served: Served) -> None:
    # custom { kind: "OPTIONS" path: "/v1/inspect/*/any/{id}" }
    response = await served.client.request("OPTIONS", "/v1/inspect/whatever/any/9")
    assert response.json() == {"id": "9"}
    response = await served.client.request("OPTIONS", "/v1/inspect//any/9")
    assert response.status_code == 404  # `*` matches one non-empty segment


async def test_verbs(served: Served) -> None:
    archived = await served.client.post("/v1/shelves/1:archive", json={})
    assert (archived.status_code, archived.json()) == (200, {})
    listed = await served.client.get("/v1/shelves/1/books")
    streamed = await served.client.get("/v1/shelves/1/books:stream")
    assert listed.headers["content-type"] == "application/json"
    assert streamed.headers["content-type"] == "application/x-ndjson"


# ---------------------------------------------------------------- body mapping


async def test_body_field_and_query_for_the_rest(served: Served) -> None:
    book = {"title": "Dune", "pageCount": "412", "authors": ["Herbert"]}
    response = await served.client.post("/v1/shelves/1/books?requestId=r1", json=book)
    assert response.json() == {"name": "shelves/1/books/r1", **book}


async def test_body_star_accepts_both_names_and_the_path_wins(served: Served) -> None:
    body = {"name": "ignored", "title": "T", "page_count": 7, "publishedAt": "2020-01-02T03:04:05Z"}
    response = await served.client.patch("/v1/shelves/1/books/2", json=body)
    assert response.json() == {
        "name": "shelves/1/books/2",
        "title": "T",
        "pageCount": "7",
        "publishedAt": "2020-01-02T03:04:05Z",
    }


async def test_body_star_round_trips_canonical_json(served: Served) -> None:
    # Every kind of field through post: "/v1/inspect:echo" body: "*": the answer is what
    # protobuf's JSON parser makes of the body, printed by protobuf's JSON printer.
    body = {
        "id": "x",
        "big": "9007199254740993",  # > 2**53: survives only as a string
        "ubig": "18446744073709551615",
        "small": -5,
        "ratio": 0.25,
        "ratio32": "NaN",
        "flag": True,
        "blob": base64.b64encode(b"\x00\xff").decode(),
        "color": "GREEN",
        "tags": ["a", "b"],
        "numbers": ["1", 2],
        "colors": ["RED", 2],
        "nested": {"label": "n", "child": {"depth": 2}},
        "when": "2024-02-29T12:00:00.5Z",
        "wait": "3.25s",
        "mask": "title,pageCount",
        "maybeCount": 0,
        "maybeFlag": False,
        "maybeText": "",
        "extra": {"k": [1, "two", None, {"x": True}]},
        "counts": {"a": 1, "b": 2},
        "numberChoice": 4,
        "opt": "",
        "anyValue": {"v": 1},
        "children": [{"label": "c1"}, {"depth": 1}],
        "signedSmall": -3,
        "fixedBig": "5",
        "list": [1, "x"],
    }
    response = await served.client.post("/v1/inspect:echo", json=body)
    assert response.status_code == 200, response.text
    expected = canonical(json_format.ParseDict(body, pb2.Everything()))
    assert response.json() == expected
    # Canonical output: lowerCamelCase names, 64-bit integers as strings, enums by name.
    assert response.json()["big"] == "9007199254740993"
    assert response.json()["colors"] == ["RED", "GREEN"]
    assert "maybeCount" in response.json()  # a wrapper set to 0 is present
    # Proto field names are accepted on input as well.
    snake = {"maybe_count": 3, "signed_small": 1, "number_choice": 2}
    response = await served.client.post("/v1/inspect:echo", json=snake)
    assert response.json() == {"maybeCount": 3, "signedSmall": 1, "numberChoice": 2}


# ---------------------------------------------------------------- query parameters


async def test_query_parameters_of_every_kind(served: Served) -> None:
    query = [
        ("big", "9007199254740993"),
        ("ubig", "18446744073709551615"),
        ("small", "-4"),
        ("ratio", "1.5"),
        ("ratio32", "Infinity"),
        ("flag", "true"),
        ("blob", base64.urlsafe_b64encode(b"\xfb\xff").decode()),
        ("color", "RED"),
        ("tags", "a"),
        ("tags", "b c"),
        ("numbers", "1"),
        ("numbers", "-2"),
        ("colors", "GREEN"),
        ("colors", "1"),  # enums by number too
        ("nested.label", "n"),
        ("nested.child.depth", "3"),
        ("nested.color", "GREEN"),
        ("when", "2020-01-01T00:00:00Z"),
        ("wait", "1.5s"),
        ("mask", "a,b.c"),
        ("maybe_count", "0"),  # proto name
        ("maybeFlag", "false"),
        ("maybeText", "t"),
        ("textChoice", "t"),
        ("opt", ""),
        ("anyValue", "free text"),
        ("signedSmall", "-1"),
        ("fixedBig", "12"),
        ("counts[a]", "1"),  # map entries, grpc-gateway's form
        ("counts[b c]", "-2"),
    ]
    response = await served.client.get("/v1/inspect/q", params=query)
    assert response.status_code == 200, response.text
    expected = pb2.Everything(
        id="q",
        big=9007199254740993,
        ubig=18446744073709551615,
        small=-4,
        ratio=1.5,
        ratio32=float("inf"),
        flag=True,
        blob=b"\xfb\xff",
        color=pb2.Everything.RED,
        tags=["a", "b c"],
        numbers=[1, -2],
        colors=[pb2.Everything.GREEN, pb2.Everything.RED],
        text_choice="t",
        opt="",
        signed_small=-1,
        fixed_big=12,
    )
    expected.nested.label = "n"
    expected.nested.child.depth = 3
    expected.nested.color = pb2.Everything.GREEN
    expected.when.FromJsonString("2020-01-01T00:00:00Z")
    expected.wait.FromJsonString("1.5s")
    expected.mask.FromJsonString("a,b.c")
    expected.maybe_count.value = 0
    expected.maybe_flag.value = False
    expected.maybe_text.value = "t"
    expected.any_value.string_value = "free text"
    expected.counts.update({"a": 1, "b c": -2})
    assert response.json() == canonical(expected)
    assert "opt" in response.json()  # proto3 optional: present even when empty


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ("?nope=1", "unknown query parameter 'nope'"),
        ("?small=x", "small"),
        ("?color=PURPLE", "PURPLE"),
        ("?flag=maybe", "invalid boolean"),
        ("?nested=1", "nested.<field>"),  # a message needs its fields named
        ("?counts=1", "counts[key]=value"),
        ("?counts[a]=x", "counts"),  # map<string, int32>
        ("?tags[a]=x", "unknown query parameter"),  # not a map
        ("?children.label=x", "unknown query parameter"),  # inside a repeated message
        ("?textChoice=a&numberChoice=1", "oneof"),
        ("?small=1&small=2", "small"),
    ],
)
async def test_bad_query_parameters(served: Served, query: str, needle: str) -> None:
    response = await served.client.get("/v1/inspect/q" + query)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert needle in response.json()["message"]


async def test_layers_query_then_body_then_path(served: Served) -> None:
    # With body "*" query parameters still set fields (as Envoy); the body is merged over them
    # and the path over both (grpc-gateway's order; Envoy lets the body win over the path).
    response = await served.client.post(
        "/v1/inspect:echo?id=q&small=1&tags=a", json={"small": 2, "ratio": 0.5}
    )
    assert response.json() == {"id": "q", "small": 2, "ratio": 0.5, "tags": ["a"]}
    response = await served.client.put("/v1/inspect/from-path/7?small=3", json={"label": "b"})
    assert response.json() == {
        "id": "7",
        "small": 3,
        "nested": {"label": "from-path"},
        "payload": {"label": "b"},
    }
    # The body field itself is not a query parameter.
    response = await served.client.put("/v1/inspect/l/7?payload.label=x", json={})
    assert response.status_code == 400


async def test_unknown_fields_and_parameters() -> None:
    async with serve() as served:
        # Defaults: unknown JSON fields are dropped (Envoy, grpc-gateway); unknown query
        # parameters are refused.
        response = await served.client.post("/v1/inspect:echo", json={"id": "x", "nope": 1})
        assert response.json() == {"id": "x"}
        response = await served.client.get("/v1/inspect/q?nope=1")
        assert response.status_code == 400
    options = HttpJson(ignore_unknown_fields=False, ignore_unknown_query_parameters=True)
    async with serve(http_json=options) as served:
        response = await served.client.get("/v1/inspect/q?nope=1&cacheBuster=2")
        assert response.json() == {"id": "q"}
        response = await served.client.post("/v1/inspect:echo", json={"id": "x", "nope": 1})
        assert response.status_code == 400
        assert "nope" in response.json()["message"]


# ---------------------------------------------------------------- responses


async def test_any_fields(served: Served) -> None:
    packed = {"@type": "type.googleapis.com/google.protobuf.Duration", "value": "1.500s"}
    response = await served.client.post("/v1/inspect:echo", json={"packed": packed})
    assert response.json() == {"packed": packed}
    unknown = {"@type": "type.googleapis.com/not.Known", "x": 1}
    response = await served.client.post("/v1/inspect:echo", json={"packed": unknown})
    assert response.status_code == 400
    # The servicer answers an Any this process cannot print: 500 INTERNAL, saying why.
    response = await served.client.get("/v1/inspect/unprintable")
    assert response.status_code == 500
    assert response.json()["code"] == grpc.StatusCode.INTERNAL.value[0]
    assert "cannot be printed as JSON" in response.json()["message"]


async def test_response_body(served: Served) -> None:
    response = await served.client.get("/v1/shelves/1/books?pageSize=2")
    assert response.json() == [
        {"name": "shelves/1/books/0"},
        {"name": "shelves/1/books/1", "pageCount": "1"},
    ]


async def test_emit_unpopulated() -> None:
    async with serve(http_json=HttpJson(emit_unpopulated=True)) as served:
        response = await served.client.get("/v1/shelves/1")
        assert response.json() == {"name": "shelves/1", "theme": "history", "userId": ""}


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("code", [c for c in grpc.StatusCode if c != grpc.StatusCode.OK])
async def test_status_to_http(served: Served, code: grpc.StatusCode) -> None:
    number = code.value[0]
    response = await served.client.post("/v1/fail", json={"code": number, "message": "why ü"})
    assert response.status_code == CODE_TO_HTTP[number]
    assert response.headers["content-type"] == "application/json"
    # google.rpc.Status in canonical JSON: no "details" when there are none.
    assert response.json() == {"code": number, "message": "why ü"}


async def test_error_details(served: Served) -> None:
    body = {"code": 3, "message": "bad", "withDetails": True, "withUnknownDetail": True}
    response = await served.client.post("/v1/fail", json=body)
    assert response.status_code == 400
    assert response.json() == {
        "code": 3,
        "message": "bad",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "OUT_OF_INK",
                "domain": "library.test",
                "metadata": {"shelf": "shelves/1"},
            },
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": "title", "description": "empty"}],
            },
            # A type this server cannot print: its bytes, base64.
            {
                "@type": "type.googleapis.com/not.Known",
                "value": base64.b64encode(b"\x08\x01").decode(),
            },
        ],
    }


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{bad", "not valid JSON"),
        (b"[]", "JSON object"),
        (b'{"code": "x"}', "code"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
async def test_bad_json_body(served: Served, body: bytes, needle: str) -> None:
    response = await served.client.post(
        "/v1/fail", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == 3
    assert needle in response.json()["message"]


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 200_000 + b"]" * 200_000,  # deeper than Python's json recurses
        b'{"extra": {"k": ' + b"[" * 5_000 + b"]" * 5_000 + b"}}",  # deeper than protobuf's
    ],
)
async def test_deeply_nested_json_is_a_400(served: Served, body: bytes) -> None:
    response = await served.client.post("/v1/inspect:echo", content=body)
    assert response.status_code == 400
    assert response.json()["code"] == 3
    assert (await served.client.get("/v1/shelves/1")).status_code == 200


async def test_body_is_json_whatever_the_content_type(served: Served) -> None:
    form = {"content-type": "application/x-www-form-urlencoded"}  # what `curl -d` sends
    response = await served.client.post("/v1/fail", content=b'{"code": 6}', headers=form)
    assert response.status_code == 409
    response = await served.client.post("/v1/fail", content=b"code=1", headers=form)
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["message"]


async def test_unknown_path_and_wrong_method(served: Served) -> None:
    response = await served.client.get("/v2/nothing")
    assert response.status_code == 404
    assert response.json()["code"] == 5
    response = await served.client.delete("/v1/shelves/1")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"


async def test_a_body_the_binding_does_not_read_is_not_grpc(served: Served) -> None:
    # GET /v1/shelves/1 maps no body: bytes sent anyway (here framed gRPC messages) are not
    # read as part of the call, which answers as without them.
    smuggled = frame(pb2.GetShelfRequest(name="shelves/evil").SerializeToString())
    response = await served.client.request("GET", "/v1/shelves/1", content=smuggled * 3)
    assert response.json() == {"name": "shelves/1", "theme": "history"}


@pytest.mark.parametrize("chunked", [False, True])
async def test_body_bounded_by_max_receive_message_length(chunked: bool) -> None:
    async with serve(config=ServerConfig(max_receive_message_length=1000)) as served:
        body = json.dumps({"title": "x" * 2000}).encode()

        async def chunks() -> Any:
            for i in range(0, len(body), 100):
                yield body[i : i + 100]

        content: Any = chunks() if chunked else body
        response = await served.client.post(
            "/v1/shelves/1/books", content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        assert response.json()["code"] == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
        ok = await served.client.post("/v1/shelves/1/books", json={"title": "x" * 900})
        assert ok.status_code == 200


@pytest.mark.parametrize("http2", [False, True])
async def test_huge_body_is_not_held(http2: bool) -> None:
    # 64 MiB at a binding whose limit is 4 MiB (the default max receive length): the server
    # holds at most the limit, drops a little more, answers 413 and stops reading. httpx, still
    # sending, may see the connection (HTTP/1.1) or the stream (HTTP/2) end instead of the 413.
    chunk = b" " * 65536

    async def body() -> Any:
        yield b'{"title": "'
        for _ in range(1024):
            yield chunk

    process = psutil.Process()
    async with serve() as served:
        before = process.memory_info().rss
        async with httpx.AsyncClient(base_url=served.url, http1=not http2, http2=http2) as client:
            try:
                response = await client.post("/v1/shelves/1/books", content=body())
                assert response.status_code == 413
            except httpx.TransportError:
                pass
        grown = process.memory_info().rss - before
        assert grown < 32 * 2**20, f"RSS grew {grown / 2**20:.1f} MiB for a 64 MiB body"
        assert (await served.client.get("/v1/shelves/1")).status_code == 200


# ---------------------------------------------------------------- metadata, deadlines, calls


async def test_headers_to_metadata_and_back(served: Served) -> None:
    response = await served.client.get(
        "/v1/whoami",
        headers={
            "x-custom": "v",
            "authorization": "Bearer t",
            "grpc-metadata-foo": "bar",
            "grpc-secret": "dropped",
            "x-token-bin": base64.b64encode(b"\x01\x02").decode(),
            "accept": "application/json",
            "grpc-metadata-grpc-status": "0",  # still no grpc-* through the prefix
            "x-bad!name": "dropped",  # not a metadata key
            "x-latin": "caf\u00e9".encode("latin-1"),  # not printable ASCII
        },
    )
    assert response.status_code == 200
    received = response.json()["metadata"]
    assert "x-custom: v" in received
    assert "authorization: Bearer t" in received
    assert "foo: bar" in received
    assert "x-token-bin: b'\\x01\\x02'" in received
    assert not [
        line
        for line in received
        if line.startswith(("grpc-", "accept", "host", "te", "x-bad", "x-latin"))
    ]
    assert response.json()["peer"].startswith("ipv4:127.0.0.1:")
    # Initial and trailing metadata come back as headers (-bin values base64, as on the wire).
    assert response.headers["x-initial"] == "hello"
    assert base64.b64decode(response.headers["x-initial-bin"] + "==") == b"\x00\x01"
    assert response.headers["x-trailing"] == "bye"


async def test_headers_to_metadata_option() -> None:
    options = HttpJson(headers_to_metadata=lambda name: name in (b"accept", b"x-keep"))
    async with serve(http_json=options) as served:
        response = await served.client.get(
            "/v1/whoami", headers={"accept": "text/x", "x-keep": "1", "x-other": "2"}
        )
        received = response.json()["metadata"]
        assert "accept: text/x" in received
        assert "x-keep: 1" in received
        assert not [line for line in received if line.startswith("x-other")]


async def test_over_tls_with_http2(tls: TLS, tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_bytes(tls.server_chain)
    (tmp_path / "key.pem").write_bytes(tls.server_key)
    app, _ = library_app()
    config = {"certfile": str(tmp_path / "cert.pem"), "keyfile": str(tmp_path / "key.pem")}
    async with in_process(app, **config) as server:
        context = ssl.create_default_context(cadata=tls.ca_pem.decode())
        async with httpx.AsyncClient(verify=context, http2=True) as client:
            response = await client.get(f"https://127.0.0.1:{server.port}/v1/whoami")
    assert response.http_version == "HTTP/2"
    assert response.json()["security"] == "ssl"  # the call sees the TLS connection


async def test_bad_binary_header(served: Served) -> None:
    response = await served.client.get("/v1/whoami", headers={"x-token-bin": "***"})
    assert response.status_code == 400


async def test_grpc_timeout_header_is_the_deadline(served: Served) -> None:
    response = await served.client.get("/v1/sleep?duration=10s", headers={"grpc-timeout": "200m"})
    assert response.status_code == 504
    assert response.json()["code"] == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]


async def test_bad_grpc_timeout_is_the_clients_error(served: Served) -> None:
    response = await served.client.get("/v1/whoami", headers={"grpc-timeout": "soon"})
    assert response.status_code == 400
    assert "grpc-timeout" in response.json()["message"]


async def test_concurrency_limit_applies() -> None:
    async with serve(config=ServerConfig(maximum_concurrent_rpcs=1)) as served:
        sleeping = asyncio.create_task(served.client.get("/v1/sleep?duration=30s"))
        for _ in range(250):
            if served.app.active_rpcs:
                break
            await asyncio.sleep(0.02)
        response = await served.client.get("/v1/shelves/1")
        assert response.status_code == 429
        assert response.json()["code"] == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
        sleeping.cancel()


async def test_client_gone_cancels_the_call(served: Served) -> None:
    request = asyncio.create_task(served.client.get("/v1/sleep?duration=30s"))
    for _ in range(200):
        if served.app.active_rpcs:
            break
        await asyncio.sleep(0.02)
    assert served.app.active_rpcs == 1
    request.cancel()  # httpx closes the connection
    for _ in range(250):
        if not served.app.active_rpcs:
            break
        await asyncio.sleep(0.02)
    assert served.app.active_rpcs == 0
    assert served.servicer.cancelled == ["Sleep"]


async def test_interceptors_see_transcoded_calls() -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    class Deny:
        async def intercept_service(self, continuation: Any, details: Any) -> Any:
            seen.append((details.method, dict(details.invocation_metadata)))
            if dict(details.invocation_metadata).get("authorization") != "Bearer ok":
                return grpc.unary_unary_rpc_method_handler(_deny)
            return await continuation(details)

    async with serve(interceptors=[Deny()]) as served:
        denied = await served.client.get("/v1/shelves/1")
        assert denied.status_code == 401
        allowed = await served.client.get("/v1/shelves/1", headers={"authorization": "Bearer ok"})
        assert allowed.status_code == 200
    assert [method for method, _ in seen] == ["/transcode.v1.Library/GetShelf"] * 2


async def _deny(request: Any, context: Any) -> Any:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, "who are you")


# ---------------------------------------------------------------- server streaming


async def test_server_streaming_ndjson(served: Served) -> None:
    response = await served.client.get("/v1/shelves/1/books:stream?pageSize=3")
    assert response.status_code == 200
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert lines == [
        {"result": {"name": f"shelves/1/books/{i}", "pageCount": str(10**12 + i)}} for i in range(3)
    ]


async def test_server_streaming_is_incremental(served: Served) -> None:
    # The servicer waits after the first book until the client has read it: only a response
    # that is streamed, not collected, gets past this.
    async with served.client.stream("GET", "/v1/shelves/1/books:stream?pageSize=99") as response:
        lines = response.aiter_lines()
        first = await asyncio.wait_for(lines.__anext__(), 10)
        assert json.loads(first)["result"]["name"] == "shelves/1/books/0"
        served.servicer.gate.set()
        rest = [line async for line in lines]
    assert rest == []


async def test_server_streaming_errors(served: Served) -> None:
    response = await served.client.get("/v1/shelves/1/books:stream?failAfterFirst=10")
    assert response.status_code == 200  # already under way when the call failed
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert lines[0]["result"]["name"] == "shelves/1/books/0"
    assert lines[1:] == [{"error": {"code": 10, "message": "stream broke"}}]
    # A failure before the first message is an ordinary error response.
    response = await served.client.get("/v1/shelves/missing/books:stream")
    assert response.status_code == 404
    assert response.json() == {"code": 5, "message": "no such shelf"}
    response = await served.client.get("/v1/shelves/1/books:stream?pageSize=-1")
    assert (response.status_code, response.text) == (200, "")


async def test_client_streaming_from_a_json_array_or_ndjson(served: Served) -> None:
    books = [{"title": "a", "pageCount": "1"}, {"title": "b", "pageCount": "2"}]
    response = await served.client.post("/v1/upload", json=books)  # Envoy's form
    assert response.json() == {"title": "a,b", "pageCount": "3"}
    ndjson = b'{"title": "c"}\n{"title": "d", "page_count": 4}\n'  # grpc-gateway's form
    response = await served.client.post("/v1/upload", content=ndjson)
    assert response.json() == {"title": "c,d", "pageCount": "4"}
    response = await served.client.post("/v1/upload", content=b"[]")
    assert response.json() == {}
    response = await served.client.post("/v1/upload", content=b'[{"title": 1}]')
    assert response.status_code == 400


async def test_http_body_raw_in_and_out(served: Served) -> None:
    # google.api.HttpBody: the body's bytes and content type, not JSON, both ways.
    data = bytes(range(256))
    response = await served.client.post(
        "/v1/shelves/1:raw", content=data, headers={"content-type": "image/x-test"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/x-test"
    assert response.content == b"shelves/1:" + data
    response = await served.client.get("/v1/shelves/2:rawstream")
    assert response.headers["content-type"] == "text/plain"
    assert response.content == b"shelves/2-0-1-2"


async def test_server_streaming_as_a_json_array() -> None:
    async with serve(http_json=HttpJson(stream_format="json-array")) as served:
        response = await served.client.get("/v1/shelves/1/books:stream?pageSize=2")
        assert response.headers["content-type"] == "application/json"
        assert response.json() == [
            {"name": "shelves/1/books/0", "pageCount": "1000000000000"},
            {"name": "shelves/1/books/1", "pageCount": "1000000000001"},
        ]
        response = await served.client.get("/v1/shelves/1/books:stream?pageSize=-1")
        assert response.json() == []
        # A failure after the first message leaves the array open: not valid JSON.
        response = await served.client.get("/v1/shelves/1/books:stream?failAfterFirst=10")
        assert response.status_code == 200
        assert response.text.startswith('[{"name":"shelves/1/books/0"')
        with pytest.raises(json.JSONDecodeError):
            json.loads(response.text)
        response = await served.client.get("/v1/shelves/missing/books:stream")
        assert response.status_code == 404
        document = (await served.client.get("/openapi.json")).json()
        stream = document["paths"]["/v1/{parent}/books:stream"]["get"]["responses"]["200"]
        assert stream["content"]["application/json"]["schema"]["type"] == "array"
        validate(document)
    with pytest.raises(ValueError, match="stream_format"):
        HttpJson(stream_format="xml")  # type: ignore[arg-type]


# ---------------------------------------------------------------- one app, every client


async def test_grpc_and_http2_clients_on_the_same_app(served: Served) -> None:
    async with grpc.aio.insecure_channel(served.target) as channel:
        stub = pb2_grpc.LibraryStub(channel)
        shelf = await stub.GetShelf(pb2.GetShelfRequest(name="shelves/1"))
        assert shelf.theme == "history"
        await stub.GrpcOnly(pb2.google_dot_protobuf_dot_empty__pb2.Empty())
    async with httpx.AsyncClient(base_url=served.url, http1=False, http2=True) as h2:
        response = await h2.get("/v1/shelves/1")
        assert response.http_version == "HTTP/2"
        assert response.json() == {"name": "shelves/1", "theme": "history"}


async def test_fallback_gets_what_no_binding_matches() -> None:
    rest = Starlette(
        routes=[
            Route("/health", lambda request: PlainTextResponse("up")),
            Route("/v1/shelves/{id}", lambda r: PlainTextResponse("rest"), methods=["POST"]),
        ]
    )
    app, _ = library_app(fallback=rest)
    async with in_process(app) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.get("/health")).text == "up"
            assert (await client.get("/v1/shelves/1")).json()["name"] == "shelves/1"
            assert (await client.get("/v9/none")).status_code == 404  # Starlette's 404
            # A method no binding has on that path: the fallback's to answer.
            assert (await client.post("/v1/shelves/1")).text == "rest"
            assert (await client.delete("/v1/shelves/1")).status_code == 405  # Starlette's


async def test_mounted_under_a_prefix() -> None:
    app, _ = library_app()
    outer = Starlette(routes=[Mount("/api", app=app)])
    async with in_process(outer) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            response = await client.get("/api/v1/shelves/1")
            assert response.json() == {"name": "shelves/1", "theme": "history"}
            assert (await client.get("/api/openapi.json")).json()["openapi"] == "3.1.0"


class _GenericOnly:
    """Keeps just the generic handler of a generated add_*_to_server (as a grpc.Server that
    predates registered method handlers would)."""

    def __init__(self) -> None:
        self.handlers: list[Any] = []

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self.handlers += handlers

    def add_registered_method_handlers(self, name: str, handlers: Any) -> None:
        pass


@pytest.mark.parametrize("named", [False, True])
async def test_generic_handlers_need_the_service_named(named: bool) -> None:
    captured = _GenericOnly()
    pb2_grpc.add_LibraryServicer_to_server(library_app()[1], captured)
    options = HttpJson(services=("transcode.v1.Library",) if named else ())
    app = GrpcApp(captured.handlers, http_json=options)
    async with in_process(app) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            response = await client.get("/v1/shelves/1")
    assert response.status_code == (200 if named else 404)


async def test_registered_after_the_first_request() -> None:
    app = GrpcApp(http_json=True)
    async with in_process(app) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.get("/v1/shelves/1")).status_code == 404
            pb2_grpc.add_LibraryServicer_to_server(library_app()[1], app)
            assert (await client.get("/v1/shelves/1")).status_code == 200
            assert "/v1/{name}" in (await client.get("/openapi.json")).json()["paths"]


async def test_a_bad_binding_costs_only_its_method(caplog: pytest.LogCaptureFixture) -> None:
    def ping(request: Any, context: Any) -> Any:
        return request

    handler = grpc.unary_unary_rpc_method_handler(
        ping,
        request_deserializer=mixed_pb2.Ping.FromString,
        response_serializer=mixed_pb2.Ping.SerializeToString,
    )
    app = GrpcApp(http_json=True)
    app.add_registered_method_handlers("transcode.v1.Mixed", {"Broken": handler, "Fine": handler})
    async with in_process(app) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.get("/v1/fine/hi")).json() == {"text": "hi"}
            assert (await client.get("/v1/broken/hi")).status_code == 404
    [record] = [r for r in caplog.records if r.name == "asgi_grpc.transcoding"]
    assert record.levelname == "ERROR"
    assert "transcode.v1.Mixed.Broken" in record.getMessage()
    assert "no_such_field" in record.getMessage()


async def test_json_transcoder_wraps_an_app() -> None:
    inner = GrpcApp()
    pb2_grpc.add_LibraryServicer_to_server(library_app()[1], inner)
    app = JsonTranscoder(inner, HttpJson(openapi_path="/docs/openapi.json"))
    async with in_process(app) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.get("/v1/shelves/1")).json()["name"] == "shelves/1"
            assert (await client.get("/docs/openapi.json")).json()["openapi"] == "3.1.0"
            assert (await client.get("/openapi.json")).status_code == 415  # the GrpcApp's answer
        async with grpc.aio.insecure_channel(server.target) as channel:
            shelf = await pb2_grpc.LibraryStub(channel).GetShelf(pb2.GetShelfRequest(name="s"))
            assert shelf.name == "s"
