"""The OpenAPI 3.1 document: valid by openapi-spec-validator, one operation per binding, the
proto comments from a descriptor set made with --include_source_info, and schemas that the
server's real JSON answers validate against."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from asgi_grpc.transcoding import HttpJson, JsonTranscoder
from tests.transcoding.conftest import Served, library_app, serve

BINDINGS = {
    ("/v1/{name}", "get"),
    ("/v1/users/{user_id}/{name}", "get"),
    ("/v1/{parent}/books", "post"),
    ("/v1/{name}", "patch"),
    ("/v1/{parent}/books", "get"),
    ("/v1/{parent}/books:stream", "get"),
    ("/v1/{name}:archive", "post"),
    ("/v1/inspect/{id}", "get"),
    ("/v1/inspect:echo", "post"),
    ("/v1/inspect/{nested.label}/{id}", "put"),
    ("/v1/inspect/{id}/{nested.label}", "delete"),
    ("/v1/inspect/{_wildcard0}/any/{id}", "options"),
    ("/v1/fail", "post"),
    ("/v1/whoami", "get"),
    ("/v1/sleep", "get"),
    ("/v1/upload", "post"),
    ("/v1/{name}:raw", "post"),
    ("/v1/{name}:rawstream", "get"),
}


@pytest.fixture
async def document(served: Served) -> dict[str, Any]:
    response = await served.client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    return dict(response.json())


def schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(document["components"]["schemas"][name])


async def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    validate(document)  # raises on any error; detects 3.1 from the document


async def test_every_binding_is_an_operation(document: dict[str, Any]) -> None:
    found = {(path, method) for path, item in document["paths"].items() for method in item}
    assert found == BINDINGS  # GrpcOnly (no rule) is absent
    upload = document["paths"]["/v1/upload"]["post"]["requestBody"]["content"]
    assert upload["application/json"]["schema"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/transcode.v1.Book"},
    }
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


async def test_comments_become_descriptions(document: dict[str, Any]) -> None:
    assert document["tags"] == [
        {
            "name": "transcode.v1.Library",
            "description": "A library of shelves and books, reachable over gRPC and HTTP/JSON.",
        }
    ]
    get_shelf = document["paths"]["/v1/{name}"]["get"]
    assert get_shelf["description"] == "Gets a shelf by its resource name."
    assert schema(document, "transcode.v1.Book")["description"] == "A book."
    page_count = schema(document, "transcode.v1.Book")["properties"]["pageCount"]
    assert page_count["description"] == "Pages; 64-bit, so a string in JSON."
    name = get_shelf["parameters"][0]
    assert name["description"] == "Resource name: shelves/{shelf}."


async def test_parameters(document: dict[str, Any]) -> None:
    get_shelf = document["paths"]["/v1/{name}"]["get"]
    assert get_shelf["parameters"] == [
        {
            "name": "name",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": "^shelves/[^/]+$"},
            "description": "Resource name: shelves/{shelf}.",
        },
        {"name": "userId", "in": "query", "required": False, "schema": {"type": "string"}},
    ]
    inspect = document["paths"]["/v1/inspect/{id}"]["get"]
    query = {p["name"]: p for p in inspect["parameters"] if p["in"] == "query"}
    assert query["nested.depth"]["schema"] == {"type": "integer", "format": "int32"}
    assert query["nested.color"]["schema"]["$ref"].endswith("transcode.v1.Everything.Color")
    # A recursive message is expanded once (nested.child.* still works as a query parameter).
    assert not [name for name in query if name.startswith("nested.child")]
    assert query["tags"]["schema"] == {"type": "array", "items": {"type": "string"}}
    assert query["tags"]["explode"] is True
    assert query["when"]["schema"] == {"type": "string", "format": "date-time"}
    assert not {"children", "extra"} & set(query)
    assert query["counts"]["style"] == "deepObject"  # counts[key]=value
    assert query["counts"]["schema"]["additionalProperties"] == {
        "type": "integer",
        "format": "int32",
    }
    assert "id" not in query  # bound by the path
    # body "*": no query parameters; body "book": the rest are.
    assert "parameters" not in document["paths"]["/v1/inspect:echo"]["post"]
    create = document["paths"]["/v1/{parent}/books"]["post"]
    assert [p["name"] for p in create["parameters"]] == ["parent", "requestId"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"] == (
        "#/components/schemas/transcode.v1.Book"
    )


async def test_http_body_is_any_media_type(document: dict[str, Any]) -> None:
    raw = document["paths"]["/v1/{name}:raw"]["post"]
    assert raw["requestBody"]["content"] == {"*/*": {"schema": {}}}
    assert raw["responses"]["200"]["content"] == {"*/*": {"schema": {}}}


async def test_schemas_follow_canonical_json(document: dict[str, Any]) -> None:
    everything = schema(document, "transcode.v1.Everything")
    props = everything["properties"]
    assert props["big"] == {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"}
    assert props["ubig"]["format"] == "uint64"
    assert props["blob"] == {"type": "string", "contentEncoding": "base64"}
    assert props["color"] == {"$ref": "#/components/schemas/transcode.v1.Everything.Color"}
    assert schema(document, "transcode.v1.Everything.Color")["enum"] == [
        "COLOR_UNSPECIFIED",
        "RED",
        "GREEN",
    ]
    assert props["counts"] == {
        "type": "object",
        "additionalProperties": {"type": "integer", "format": "int32"},
    }
    assert props["wait"]["type"] == "string"
    assert "pattern" in props["wait"]
    assert props["mask"]["type"] == "string"
    assert props["maybeCount"]["type"] == ["integer", "null"]
    assert props["extra"] == {"type": "object", "additionalProperties": True}
    assert props["children"]["type"] == "array"
    assert "textChoice" in props  # JSON names
    assert "text_choice" not in props
    assert everything["not"] == {"anyOf": [{"required": ["textChoice", "numberChoice"]}]}
    streaming = document["paths"]["/v1/{parent}/books:stream"]["get"]["responses"]["200"]
    assert list(streaming["content"]) == ["application/x-ndjson"]
    error = document["paths"]["/v1/fail"]["post"]["responses"]["default"]
    assert error["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/google.rpc.Status"
    }


def _validator(document: dict[str, Any], name: str) -> OAS31Validator:
    root = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    return OAS31Validator(root)


async def test_real_answers_validate_against_the_schemas(
    served: Served, document: dict[str, Any]
) -> None:
    body = {
        "id": "x",
        "big": "12",
        "blob": base64.b64encode(b"1").decode(),
        "color": "RED",
        "counts": {"a": 1},
        "extra": {"k": [1]},
        "maybeCount": 0,
        "wait": "1s",
        "when": "2020-01-01T00:00:00Z",
        "textChoice": "t",
        "nested": {"child": {"label": "c"}},
    }
    echoed = (await served.client.post("/v1/inspect:echo", json=body)).json()
    _validator(document, "transcode.v1.Everything").validate(echoed)
    error = (await served.client.post("/v1/fail", json={"code": 3, "withDetails": True})).json()
    _validator(document, "google.rpc.Status").validate(error)
    # ...and the schema refuses what canonical JSON never is.
    bad = _validator(document, "transcode.v1.Everything")
    assert not bad.is_valid({"big": 12})  # int64 must be a string
    assert not bad.is_valid({"color": "PURPLE"})
    assert not bad.is_valid({"textChoice": "a", "numberChoice": 1})  # oneof


async def test_without_source_info_still_valid() -> None:
    async with serve(http_json=HttpJson(title="Library", version="2")) as served:
        document = (await served.client.get("/openapi.json")).json()
    validate(document)
    assert document["info"] == {"title": "Library", "version": "2"}
    assert "description" not in document["paths"]["/v1/{name}"]["get"]


async def test_openapi_path_is_configurable_and_can_be_off() -> None:
    async with serve(http_json=HttpJson(openapi_path=None)) as served:
        assert (await served.client.get("/openapi.json")).status_code == 404
    transcoder = JsonTranscoder(library_app()[0])
    validate(transcoder.openapi())  # also available as a dict, e.g. to write to a file
    async with serve() as served:
        response = await served.client.post("/openapi.json")
        assert response.status_code == 405
