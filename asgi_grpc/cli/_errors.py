"""The two ways a command fails, and the exit statuses they map to."""

from __future__ import annotations

from .._core import StatusCode

RPC_EXIT_BASE = 64
"""An RPC that ends with status code ``c`` exits with ``64 + c`` (grpcurl's convention):
DEADLINE_EXCEEDED is 68, UNAVAILABLE 78. Scripts can tell RPC errors from usage errors (2) and
local failures (1)."""


class CliError(Exception):
    """A local failure (unreadable file, bad JSON, unknown method kind): exit status 1."""


class RpcFailure(Exception):
    """An RPC (or a reflection lookup) failed: ``ERROR: <CODE>: <details>``, exit 64 + code."""

    def __init__(self, code: StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details

    @property
    def exit_status(self) -> int:
        value: int = self.code.value[0]
        return RPC_EXIT_BASE + value
