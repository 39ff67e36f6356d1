"""Helpers for the core tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from asgi_grpc._core import ProtocolError

T = TypeVar("T")


def outcome(function: Callable[..., T], *args: Any) -> T | ProtocolError:
    """The result of a call that may fail, or the ProtocolError it raised (and nothing else)."""
    try:
        return function(*args)
    except ProtocolError as exc:
        return exc
