"""The errors a client call raises: grpc.aio's AioRpcError and InvalidStateError."""

from __future__ import annotations

import asyncio
from typing import Any

from .._core import Metadata, StatusCode
from .._errors import RpcError, UsageError


class AioRpcError(RpcError):
    """grpc.aio.AioRpcError: a call ended with a non-OK status.

    It pickles (``__reduce__``), so it crosses process boundaries (multiprocessing, Celery,
    logging handlers) with its code, details and metadata.
    """

    def __init__(
        self,
        code: StatusCode,
        initial_metadata: Metadata | None = None,
        trailing_metadata: Metadata | None = None,
        details: str | None = None,
        debug_error_string: str | None = None,
    ) -> None:
        super().__init__()
        self._code = code
        self._details = details
        self._initial_metadata = initial_metadata if initial_metadata is not None else Metadata()
        self._trailing_metadata = trailing_metadata if trailing_metadata is not None else Metadata()
        self._debug_error_string = debug_error_string

    def code(self) -> StatusCode:
        return self._code

    def details(self) -> str | None:
        return self._details

    def initial_metadata(self) -> Metadata:
        return self._initial_metadata

    def trailing_metadata(self) -> Metadata:
        return self._trailing_metadata

    def debug_error_string(self) -> str:
        return self._debug_error_string or f"{self._code.name}: {self._details}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            type(self),
            (
                self._code,
                self._initial_metadata,
                self._trailing_metadata,
                self._details,
                self._debug_error_string,
            ),
        )

    def _repr(self) -> str:
        return (
            f"<{type(self).__name__} of RPC that terminated with:\n"
            f'\tstatus = {self._code}\n\tdetails = "{self._details}"\n'
            f'\tdebug_error_string = "{self.debug_error_string()}"\n>'
        )

    __repr__ = _repr
    __str__ = _repr


class InvalidStateError(UsageError, asyncio.InvalidStateError):
    """write() on a half-closed or ended call: grpc.aio raises ``asyncio.InvalidStateError``,
    so code written for it catches that; this is also our :class:`UsageError`."""


class CallError(Exception):
    """A call fails before it is sent (credentials, an unusable target)."""

    def __init__(self, code: StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details
