"""Channel and server options (``options=[(key, value), ...]``), checked as grpcio checks them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def option_dict(options: Iterable[Any] | None) -> dict[str, Any]:
    """``options`` as a dict, refusing what grpcio refuses when the channel or server is made.

    Not iterable: TypeError. An item that is not a (key, value) pair: ValueError (a dict passes
    its keys, a string its characters, so both end here). A key that is neither str nor bytes, or
    a None value: TypeError. Other values are not checked: asgi_grpc's own options take objects
    (``grpc.ssl_session_cache``) that grpcio would pass as C pointers.
    """
    result: dict[str, Any] = {}
    if options is None:
        return result
    for option in tuple(options):
        key, value = option  # not a pair: ValueError, as grpcio
        if isinstance(key, bytes):
            key = key.decode("utf-8")
        elif not isinstance(key, str):
            raise TypeError(f"Expected str, not {type(key)}")
        if value is None:
            raise TypeError(f"Expected int, bytes, or behavior, got {type(value)}")
        result[key] = value
    return result
