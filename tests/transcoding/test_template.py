"""Path templates (sans-IO): http.proto's grammar and matching rules, case by case, and a
property check that expanding a template the client's way and matching it gives the values
back."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asgi_grpc.transcoding import TemplateError, parse_template


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        # The examples of google/api/http.proto.
        ("/v1/{name=messages/*}", "/v1/messages/123456", {"name": "messages/123456"}),
        ("/v1/messages/{message_id}", "/v1/messages/123456", {"message_id": "123456"}),
        (
            "/v1/users/{user_id}/messages/{message_id}",
            "/v1/users/me/messages/123456",
            {"user_id": "me", "message_id": "123456"},
        ),
        (
            "/v1/messages/{message_id}/{sub.subfield}",
            "/v1/messages/1/foo",
            {"message_id": "1", "sub.subfield": "foo"},
        ),
        # Wildcards.
        ("/v1/*/items", "/v1/any/items", {}),
        ("/v1/*/items", "/v1//items", None),
        ("/v1/**", "/v1/a/b/c", {}),
        ("/v1/{path=**}", "/v1/a/b/c", {"path": "a/b/c"}),
        ("/v1/{path=**}", "/v1", {"path": ""}),  # zero segments
        ("/v1/{path=files/**}", "/v1/files/x/y", {"path": "files/x/y"}),
        ("/v1/{path=files/**}", "/v1/other/x", None),
        ("/v1/{name=shelves/*/books/*}", "/v1/shelves/1/books/2", {"name": "shelves/1/books/2"}),
        ("/v1/{name=shelves/*/books/*}", "/v1/shelves/1/books", None),
        # Verbs.
        ("/v1/{name=things/*}:cancel", "/v1/things/1:cancel", {"name": "things/1"}),
        ("/v1/{name=things/*}:cancel", "/v1/things/1", None),
        ("/v1/{name=things/*}:cancel", "/v1/things/1:undo", None),
        ("/v1/{path=**}:get", "/v1/a/b:get", {"path": "a/b"}),
        # Decoding: one segment fully; several segments keep %2F.
        ("/v1/{id}", "/v1/a%2Fb%3F", {"id": "a/b?"}),
        ("/v1/{path=**}", "/v1/a%2Fb/c%20d", {"path": "a%2Fb/c d"}),
        ("/v1/{path=**}", "/v1/a%2fb", {"path": "a%2fb"}),
        ("/v1/{id}", "/v1/a/b", None),
        ("/v1/{id}", "v1/x", None),
        # Literals match their percent-decoded form.
        ("/v1/a b", "/v1/a%20b", {}),
    ],
)
def test_match(template: str, path: str, expected: dict[str, str] | None) -> None:
    values = parse_template(template).match(path)
    assert (None if values is None else {".".join(k): v for k, v in values.items()}) == expected


@pytest.mark.parametrize(
    "template",
    [
        "v1/x",
        "/v1/{a",
        "/v1/a}",
        "/v1/{a={b}}",
        "/v1/**/x",
        "/v1//x",
        "/v1/{1bad}",
        "/v1/x:",
        "/v1/{a=}",
    ],
)
def test_bad_templates(template: str) -> None:
    with pytest.raises(TemplateError):
        parse_template(template)


def test_openapi_path() -> None:
    assert parse_template("/v1/{name=shelves/*}/books:stream").openapi_path() == (
        "/v1/{name}/books:stream",
        {"name": "^shelves/[^/]+$"},
    )
    assert parse_template("/v1/*/x/{id}").openapi_path() == ("/v1/{_wildcard0}/x/{id}", {})


_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1)


@given(single=_text, many=st.lists(_text, min_size=1, max_size=4))
def test_client_expansion_round_trips(single: str, many: list[str]) -> None:
    # http.proto: a client percent-encodes all but [-_.~0-9a-zA-Z] in a one-segment variable
    # and all but [-_.~/0-9a-zA-Z] in a multi-segment one; the server does the reverse.
    template = parse_template("/v1/{one}/x/{rest=**}")
    path = (
        "/v1/" + quote(single, safe="-_.~") + "/x/" + "/".join(quote(p, safe="-_.~") for p in many)
    )
    values = template.match(path)
    assert values is not None
    assert values[("one",)] == single
    # Each segment's own slashes stay %2F-escaped; the joining slashes are real.
    assert values[("rest",)] == "/".join(p.replace("/", "%2F") for p in many)
