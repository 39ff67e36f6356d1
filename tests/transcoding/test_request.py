"""Request building (sans-IO): any message whose fields are written as query parameters the way
its canonical JSON prints them comes back equal (hypothesis), and the merge order of the three
layers."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import json_format
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from asgi_grpc.transcoding._request import TranscodeError, build_request
from tests.transcoding.library import pb2

_INT32 = st.integers(-(2**31), 2**31 - 1)
_INT64 = st.integers(-(2**63), 2**63 - 1)
_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)))
_COLORS = st.sampled_from(["COLOR_UNSPECIFIED", "RED", "GREEN"])

everything = st.builds(
    pb2.Everything,
    id=_TEXT,
    big=_INT64,
    ubig=st.integers(0, 2**64 - 1),
    small=_INT32,
    ratio=st.floats(allow_nan=False),
    ratio32=st.floats(width=32, allow_nan=False),
    flag=st.booleans(),
    blob=st.binary(),
    color=_COLORS,
    tags=st.lists(_TEXT, max_size=3),
    numbers=st.lists(_INT64, max_size=3),
    colors=st.lists(_COLORS, max_size=3),
    nested=st.builds(pb2.Everything.Nested, label=_TEXT, depth=_INT32, color=_COLORS),
    signed_small=_INT32,
    fixed_big=st.integers(0, 2**64 - 1),
    text_choice=_TEXT,
    counts=st.dictionaries(_TEXT, _INT32, max_size=3),
)


def as_query(data: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Canonical JSON -> query parameters: nested messages dotted, lists repeated, maps as
    name[key]."""
    query: list[tuple[str, str]] = []
    for name, value in data.items():
        key = prefix + name
        if isinstance(value, dict) and name == "counts":
            query += [(f"{key}[{k}]", str(v)) for k, v in value.items()]
        elif isinstance(value, dict):
            query += as_query(value, key + ".")
        elif isinstance(value, list):
            query += [(key, _text(v)) for v in value]
        else:
            query.append((key, _text(value)))
    return query


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@settings(max_examples=300, deadline=None)
@given(message=everything)
def test_query_parameters_round_trip(message: Any) -> None:
    data = json_format.MessageToDict(message)
    # A sub-message set but empty has no query form (nor does a map key with brackets).
    assume(data.get("nested") != {})
    path_id = data.pop("id", "")
    built = build_request(
        pb2.Everything,
        path_values={("id",): path_id},
        query=as_query(data),
        body_field="",
    )
    assert built == message


def test_layers_merge_in_order() -> None:
    built = build_request(
        pb2.Everything,
        path_values={("nested", "label"): "path"},
        query=[("small", "1"), ("tags", "q"), ("nested.depth", "4"), ("ratio", "2")],
        body_field="*",
        body={"small": 2, "tags": ["b"], "nested": {"label": "body", "color": "RED"}},
    )
    expected = pb2.Everything(small=2, tags=["b"], ratio=2)
    expected.nested.label = "path"  # the path over the body
    expected.nested.depth = 4  # the query where the body says nothing
    expected.nested.color = pb2.Everything.RED
    assert built == expected


@pytest.mark.parametrize(
    ("body_field", "body"),
    [
        ("*", []),
        ("*", "text"),
        ("payload", "text"),
        ("small", {"x": 1}),
        ("*", {"nested": "text"}),
        ("*", {"children": ["text"]}),
    ],
)
def test_body_of_the_wrong_shape(body_field: str, body: Any) -> None:
    with pytest.raises(TranscodeError) as caught:
        build_request(pb2.Everything, path_values={}, query=[], body_field=body_field, body=body)
    assert caught.value.code.name == "INVALID_ARGUMENT"
