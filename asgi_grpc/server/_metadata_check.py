"""Checks of metadata that handlers hand to the server, as grpcio makes them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._core import MetadataLike


def checked_metadata(metadata: Any, *, tuple_pairs: bool = False) -> MetadataLike:
    """Metadata as grpcio's servers take it: pairs of a str key and a str or bytes value
    (any iterable of them, read once here); TypeError, with grpcio's message, otherwise.

    With ``tuple_pairs`` (grpc.aio's ServicerContext), as grpc.aio checks it: no mapping (not
    even an empty one), and each pair a tuple."""
    try:
        if tuple_pairs and isinstance(metadata, Mapping):
            raise TypeError
        pairs = tuple(metadata)
        for pair in pairs:
            if tuple_pairs and not isinstance(pair, tuple):
                raise TypeError
            key, value = pair
            if not isinstance(key, str) or not isinstance(value, (str, bytes)):
                raise TypeError
    except (TypeError, ValueError):
        raise TypeError(
            "Invalid trailing metadata type, expected Tuple[Tuple[str, Union[str, bytes]]...]: "
            f"{metadata!r}"
        ) from None
    return pairs


def checked_abort_metadata(metadata: Any) -> MetadataLike:
    """grpc.aio's ``abort(trailing_metadata=...)``: a tuple of pairs (or None, refused by the
    pairs check), as grpc.aio's typed argument takes it."""
    if metadata is not None and not isinstance(metadata, tuple):
        raise TypeError(
            "Argument 'trailing_metadata' has incorrect type "
            f"(expected tuple, got {type(metadata).__name__})"
        )
    return checked_metadata(metadata, tuple_pairs=True)
