"""The error types of the public API, shared by server and client.

::

    Exception
    ├── RpcError                 grpc.RpcError: a call ended with a non-OK status (client side)
    └── BaseError                grpc.aio.BaseError
        ├── AbortError           raised inside a handler by ``context.abort()``
        ├── UsageError           the API was used in a way it does not allow
        └── InternalError        something broke inside asgi_grpc itself
"""

from __future__ import annotations

import enum
from typing import Final


class RpcError(Exception):
    """grpc.RpcError: raised by the client when a call ends with a non-OK status."""


class BaseError(Exception):
    """grpc.aio.BaseError: the root of grpc.aio's own exceptions."""


class AbortError(BaseError):
    """Raised inside a handler by ``context.abort()``; the server turns it into the status."""


class UsageError(BaseError):
    """The API was misused (for example, ``write`` after ``done_writing``)."""


class InternalError(BaseError):
    """An internal failure of asgi_grpc (a bug: please report it)."""


class _EOFType(enum.Enum):
    """The type of :data:`EOF`: a one-member enum, so ``x is EOF`` narrows types for mypy."""

    EOF = "EOF"

    def __repr__(self) -> str:
        return "EOF"

    def __bool__(self) -> bool:
        return False


EOF: Final = _EOFType.EOF
"""Returned by ``read()`` on a stream that has ended (grpc.aio.EOF)."""
