"""What the client's call, interceptor, multi-callable and channel modules share.

The client modules import one way (each only from those left of it)::

    _service_config  ->  _base, _rpc_error, _retry  ->  _call  ->  _call_kinds
        ->  _multicallable  ->  _channel
    _interceptors  ->  _intercepted (also _call)   ->  _multicallable

A call needs a few things from its channel (limits, the pool to open streams on, the
connectivity hooks): :class:`CallHost` names them, and :class:`ChannelHost` what
multi-callables need, so neither imports the channel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .._core import Headers, Metadata, StatusCode
from ._service_config import RetryPlan

if TYPE_CHECKING:
    from ._pool import ConnectionPool

DoneCallback = Callable[[Any], None]

CANCELLED_DETAILS = "Locally cancelled by application!"
DEADLINE_DETAILS = "Deadline Exceeded"
FINISHED_DETAILS = "RPC already finished."
HALF_CLOSED_DETAILS = 'RPC is half closed after calling "done_writing".'

EMPTY = Metadata()


@dataclass(frozen=True, slots=True)
class CallSettings:
    """What one call sends: prebuilt headers, its timeout and request encoding."""

    headers: Headers
    timeout: float | None
    encoding: str
    # Call-credential plugins (channel's, then the call's), run before the call is sent.
    plugins: tuple[Any, ...] = ()
    wait_for_ready: bool = False
    # The method's retryPolicy or hedgingPolicy from the service config, if retries are on.
    retry: RetryPlan | None = None


class Backoff(Protocol):
    def next(self) -> float: ...


class CallHost(Protocol):
    """The channel, as its calls see it."""

    _max_receive: int | None
    _max_send: int | None
    _authority: str
    _calls: set[Any]

    @property
    def _backoff(self) -> Backoff: ...

    async def _pick_pool(self) -> ConnectionPool: ...

    def _connected(self) -> None: ...

    def _connect_failed(self) -> None: ...


class ChannelHost(CallHost, Protocol):
    """The channel, as its multi-callables see it."""

    _secure: bool
    _interceptors_by_kind: dict[str, tuple[Any, ...]]

    def _check_open(self) -> None: ...

    def _call_settings(
        self,
        timeout: float | None,
        metadata: Any,
        compression: Any,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        method: bytes = b"",
    ) -> CallSettings: ...


class Status:
    """How a call ended."""

    __slots__ = ("code", "debug", "details", "metadata")

    def __init__(
        self, code: StatusCode, details: str | None, metadata: Metadata, debug: str | None = None
    ) -> None:
        self.code = code
        self.details = details
        self.metadata = metadata
        self.debug = debug


class RpcContext:
    """grpc.aio.RpcContext: what every call and servicer context can tell and do."""

    __slots__ = ()

    def cancelled(self) -> bool:
        raise NotImplementedError

    def done(self) -> bool:
        raise NotImplementedError

    def time_remaining(self) -> float | None:
        raise NotImplementedError

    def cancel(self) -> bool:
        raise NotImplementedError

    def add_done_callback(self, callback: DoneCallback) -> None:
        raise NotImplementedError
