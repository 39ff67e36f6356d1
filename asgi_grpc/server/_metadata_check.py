"""Checks of metadata that handlers hand to the server, as grpcio makes them."""

from __future__ import annotations

from typing import Any

from .._core import MetadataLike


def checked_metadata(metadata: Any) -> MetadataLike:
    """Metadata as grpcio's servers take it: pairs of a str key and a str or bytes value
    (any iterable of them, read once here); TypeError, with grpcio's message, otherwise."""
    try:
        pairs = tuple(metadata)
        for key, value in pairs:
            if not isinstance(key, str) or not isinstance(value, (str, bytes)):
                raise TypeError
    except (TypeError, ValueError):
        raise TypeError(
            "Invalid trailing metadata type, expected Tuple[Tuple[str, Union[str, bytes]]...]: "
            f"{metadata!r}"
        ) from None
    return pairs
