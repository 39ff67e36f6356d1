"""Helpers for the core tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import strategies as st

from asgi_grpc._core import ProtocolError

T = TypeVar("T")


def outcome(function: Callable[..., T], *args: Any) -> T | ProtocolError:
    """The result of a call that may fail, or the ProtocolError it raised (and nothing else)."""
    try:
        return function(*args)
    except ProtocolError as exc:
        return exc


# Fast strategies (st.from_regex is several times slower to draw from).
PRINTABLE_ASCII = "".join(chr(c) for c in range(0x20, 0x7F))
KEY_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-_."


def ascii_values(max_size: int = 20) -> st.SearchStrategy[str]:
    """Valid non-binary metadata values: printable ASCII, spaces included."""
    return st.text(alphabet=PRINTABLE_ASCII, max_size=max_size)


def metadata_keys(max_size: int = 12) -> st.SearchStrategy[str]:
    """Syntactically valid metadata keys (reserved ones included: filter as needed)."""
    return st.text(alphabet=KEY_CHARS, min_size=1, max_size=max_size)
