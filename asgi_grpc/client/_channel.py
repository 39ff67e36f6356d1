"""grpc.aio.Channel on our HTTP/2 pool, owned through an ``httpx.AsyncClient``.

The channel keeps an :class:`httpx.AsyncClient` whose transport is
:class:`~._transport.GrpcTransport` (``channel.http_client``, for anything httpx-shaped), and
calls go straight to the transport's connection pools: the per-call path skips httpx's request
machinery, which costs about a millisecond of CPU per call.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
from collections.abc import Sequence
from typing import Any

import httpx

from .._allocator import tune_allocator
from .._connectivity import ChannelConnectivity
from .._core import (
    DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH,
    Compression,
    StatusCode,
    encoding_name,
    option_dict,
    request_headers,
)
from .._errors import UsageError
from ._address import Address, Target, TCPAddress, parse_target
from ._base import CallSettings
from ._connection import ConnectionSettings
from ._hooks import EventHooks, has_hooks
from ._interceptors import select
from ._multicallable import (
    StreamStreamMultiCallable,
    StreamUnaryMultiCallable,
    UnaryStreamMultiCallable,
    UnaryUnaryMultiCallable,
)
from ._pool import Backoff, ConnectionPool
from ._rpc_error import CallError
from ._service_config import DEFAULT_RETRY_BUFFER, MethodConfig, RetryPlan, ServiceConfig
from ._transport import GrpcTransport
from ._transport_errors import ConnectError, TransportError
from ._web import WebPool

__all__ = ["Channel", "insecure_channel", "secure_channel"]

USER_AGENT = "grpc-python-asgi_grpc/0.1.0"
ChannelArgument = tuple[str, Any]

# grpcio's details for call credentials on a cleartext channel (the call fails UNAUTHENTICATED).
INSECURE_CALL_CREDENTIALS = (
    "Established channel does not have a sufficient security level to transfer call credential."
)


class Channel:
    """grpc.aio.Channel."""

    def __init__(
        self,
        target: str,
        options: Sequence[ChannelArgument] | None,
        credentials: Any,
        compression: Compression | None,
        interceptors: Sequence[Any] | None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        opts = option_dict(options)  # bad options raise here, as grpcio's do
        # Large messages stop costing page faults per call (see asgi_grpc._allocator).
        tune_allocator()
        self._target_text = target
        # As grpcio: a target that cannot be used fails each call (UNKNOWN), not the channel's
        # construction, and nothing here needs an event loop.
        self._target_error: str | None = None
        self._target_error_code = StatusCode.UNKNOWN
        try:
            if target.startswith("xds:"):
                # As grpcio without an xDS bootstrap: the channel is made, its calls fail.
                self._target_error_code = StatusCode.UNAVAILABLE
                raise ValueError("xDS is not supported by asgi_grpc")
            self._target: Target = parse_target(target)
        except ValueError as exc:
            self._target = Target((), target)
            self._target_error = f"Failed to create channel to {target!r}: {exc}"
        if getattr(credentials, "_cleartext", False):
            # grpc.experimental.insecure_channel_credentials() (an xDS fallback): cleartext, as
            # insecure_channel; call credentials composed into it fail every call, as grpcio's.
            if credentials.call_credentials and self._target_error is None:
                self._target_error_code = StatusCode.UNAUTHENTICATED
                self._target_error = INSECURE_CALL_CREDENTIALS
            credentials = None
        self._max_receive = _limit(
            opts.get("grpc.max_receive_message_length"), DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH
        )
        self._max_send = _limit(opts.get("grpc.max_send_message_length"), None)
        self._compression = encoding_name(
            compression
            if compression is not None
            else opts.get("grpc.default_compression_algorithm")
        )
        agent = [
            opts.get("grpc.primary_user_agent"),
            USER_AGENT,
            opts.get("grpc.secondary_user_agent"),
        ]
        self._user_agent = " ".join(a for a in agent if a).encode("ascii")
        self._credentials = credentials
        self._plugins: tuple[Any, ...] = (
            tuple(p for c in credentials.call_credentials for p in c.plugins) if credentials else ()
        )
        self._secure = credentials is not None
        # Local credentials: calls fail UNAVAILABLE unless the target is local (as grpcio).
        self._refusal = getattr(credentials, "_refusal", None)
        self._interceptors = tuple(interceptors or ())
        self._interceptors_by_kind = select(self._interceptors)
        authority = opts.get("grpc.default_authority") or self._target.authority
        self._authority = authority
        ssl_context: ssl.SSLContext | None = None
        server_hostname = opts.get("grpc.ssl_target_name_override")
        if credentials is not None:
            ssl_context = credentials._ssl_context(opts)
        settings = ConnectionSettings.from_options(opts)
        scheme = "https" if credentials is not None else "http"
        base_url = f"{scheme}://{authority}"
        # A user's client (see _user_transport) keeps its TLS settings and stays theirs to close.
        self._owns_client = http_client is None
        if http_client is None:
            self._transport = GrpcTransport(
                verify=ssl_context if ssl_context is not None else True, settings=settings
            )
            http_client = httpx.AsyncClient(transport=self._transport, base_url=base_url)
        else:
            self._transport = _user_transport(http_client, base_url)
            if has_hooks(http_client):  # the client's event hooks see the calls too
                self._interceptors = (EventHooks(http_client, base_url), *self._interceptors)
                self._interceptors_by_kind = select(self._interceptors)
        self.http_client = http_client
        pool_ssl = self._transport.ssl_context() if ssl_context is not None else None

        # gRPC-Web instead of gRPC (option asgi_grpc.grpc_web: True, or "text"): see _web.
        web = opts.get("asgi_grpc.grpc_web")
        self._web = bool(web)

        def new_pool(group: tuple[Address, ...]) -> Any:
            if web:
                return WebPool(
                    group[0],
                    secure=credentials is not None,
                    authority=authority,
                    ssl_context=ssl_context,
                    text=web == "text",
                    http2=bool(opts.get("asgi_grpc.grpc_web_http2", False)),
                )
            return ConnectionPool(
                group,
                authority=authority,
                ssl_context=pool_ssl,
                server_hostname=server_hostname
                or (_tls_name(group[0], authority) if pool_ssl is not None else None),
                settings=settings,
            )

        self._new_pool = new_pool
        # grpc.service_config: load balancing, and per method its timeout, waitForReady and
        # retry or hedging policy (the policies only while grpc.enable_retries, on by default).
        try:
            service_config = ServiceConfig.parse(opts.get("grpc.service_config"))
        except ValueError as exc:
            # As grpcio: an invalid config fails each call (INVALID_ARGUMENT), not the
            # channel's construction.
            service_config = ServiceConfig()
            self._config_error: str | None = f"Failed to create channel to {target!r}:{exc}"
        else:
            self._config_error = None
        self._service_config = service_config
        self._retries = bool(opts.get("grpc.enable_retries", 1))
        self._retry_throttle = service_config.new_throttle()
        self._retry_buffer = int(opts.get("grpc.per_rpc_retry_buffer_size", DEFAULT_RETRY_BUFFER))
        self._method_plans: dict[bytes, tuple[MethodConfig | None, RetryPlan | None]] = {}
        self._round_robin = (
            opts.get("grpc.lb_policy_name") == "round_robin" or service_config.round_robin
        )
        self._pools = self._build_pools(self._target.addresses) if self._target.addresses else []
        self._base_url = base_url
        self._shared_pool: ConnectionPool | None = None
        self._share_pool()
        # round_robin spreads calls over every address a name resolves to (a headless
        # Kubernetes Service, for one): names are resolved before the first call.
        self._resolving: asyncio.Future[None] | None = None
        self._resolved = not (
            self._round_robin
            and any(
                isinstance(a, TCPAddress) and not _is_ip(a.host) for a in self._target.addresses
            )
        )
        self._next_pool = 0
        self._closed = False
        self._calls: set[Any] = set()
        self._state = ChannelConnectivity.IDLE
        self._state_waiters: list[asyncio.Future[None]] = []
        self._connecting: asyncio.Task[None] | None = None
        self._backoff = Backoff(settings)

    # ------------------------------------------------------------------ plumbing for calls

    def _share_pool(self, replace: bool = False) -> None:
        """Requests through ``http_client`` to the channel's origin go to the channel's first
        pool (or calls go to the pool the client already has there): one set of connections."""
        if self._pools and not self._web:
            pool = self._transport.share_pool(self._base_url, self._pools[0], replace=replace)
            self._pools[0] = self._shared_pool = pool

    def _build_pools(self, addresses: tuple[Address, ...]) -> list[ConnectionPool]:
        if self._round_robin and len(addresses) > 1:
            return [self._new_pool((address,)) for address in addresses]
        return [self._new_pool(addresses)]  # pick_first: the pool tries them in order

    async def _resolve(self) -> None:
        """round_robin over host names: one pool per resolved address (once per channel)."""
        if self._resolving is None:
            self._resolving = asyncio.ensure_future(self._resolve_names())
        await asyncio.shield(self._resolving)

    async def _resolve_names(self) -> None:
        loop = asyncio.get_running_loop()
        resolved: list[Address] = []
        for address in self._target.addresses:
            if not isinstance(address, TCPAddress) or _is_ip(address.host):
                resolved.append(address)
                continue
            try:
                infos = await loop.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM)
            except OSError:
                resolved.append(address)  # the pool will report the failure per call
                continue
            for *_, sockaddr in infos:
                found = TCPAddress(str(sockaddr[0]), address.port)
                if found not in resolved:
                    resolved.append(found)
        self._resolved = True
        if len(resolved) > 1:
            old, self._pools = self._pools, self._build_pools(tuple(resolved))
            if self._owns_client:
                self._share_pool(replace=True)
            for pool in old:
                if self._owns_client or pool is not self._shared_pool:  # that one is the user's
                    await pool.aclose()

    async def _pick_pool(self) -> ConnectionPool:
        # Calls made before close() still run within its grace: new ones are refused earlier,
        # in the multi-callable (UsageError), and the pools refuse once closed.
        if self._config_error is not None:
            raise CallError(StatusCode.INVALID_ARGUMENT, self._config_error)
        if self._target_error is not None:
            raise CallError(self._target_error_code, self._target_error)
        if not self._resolved:
            await self._resolve()
        if self._refusal is not None:
            refused = await self._refusal(self._target)
            if refused is not None:
                raise ConnectError(refused)
        pools = self._pools
        if len(pools) == 1:
            return pools[0]
        self._next_pool = (self._next_pool + 1) % len(pools)
        return pools[self._next_pool]

    def _call_settings(
        self,
        timeout: float | None,
        metadata: Any,
        compression: Compression | None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        method: bytes = b"",
    ) -> CallSettings:
        config, plan = self._method_config(method)
        if config is not None:
            # The call's own timeout wins when shorter; its own wait_for_ready when given.
            if config.timeout is not None and (timeout is None or config.timeout < timeout):
                timeout = config.timeout
            if wait_for_ready is None:
                wait_for_ready = config.wait_for_ready
        encoding = self._compression if compression is None else encoding_name(compression)
        headers = request_headers(
            timeout=timeout,
            encoding=encoding,
            metadata=metadata,
            user_agent=self._user_agent,
        )
        plugins = self._plugins
        if credentials is not None:
            plugins = plugins + tuple(credentials.plugins)
        return CallSettings(headers, timeout, encoding, plugins, bool(wait_for_ready), plan)

    def _method_config(self, method: bytes) -> tuple[MethodConfig | None, RetryPlan | None]:
        """The service config's entry for ``method`` and its retry plan (looked up once)."""
        found = self._method_plans.get(method)
        if found is None:
            config = self._service_config.lookup(method) if method else None
            plan = None
            if config is not None and config.retry is not None and self._retries:
                plan = RetryPlan(config.retry, self._retry_throttle, self._retry_buffer)
            found = self._method_plans[method] = (config, plan)
        return found

    # ------------------------------------------------------------------ connectivity

    def _set_state(self, state: ChannelConnectivity) -> None:
        if state is self._state or self._state is ChannelConnectivity.SHUTDOWN:
            return
        self._state = state
        waiters, self._state_waiters = self._state_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _connected(self) -> None:
        """A call got a stream: the channel is READY."""
        self._backoff.reset()
        if self._state is not ChannelConnectivity.READY:
            self._set_state(ChannelConnectivity.READY)

    def _connect_failed(self) -> None:
        self._set_state(ChannelConnectivity.TRANSIENT_FAILURE)

    def _refresh_state(self) -> ChannelConnectivity:
        # READY means a live connection: one that dropped since takes the channel back to IDLE.
        if self._state is ChannelConnectivity.READY and not any(
            pool.connections for pool in self._pools
        ):
            self._set_state(ChannelConnectivity.IDLE)
        return self._state

    def get_state(self, try_to_connect: bool = False) -> ChannelConnectivity:
        """The channel's connectivity; ``try_to_connect`` starts connecting if IDLE."""
        state = self._refresh_state()
        if try_to_connect and state in (
            ChannelConnectivity.IDLE,
            ChannelConnectivity.TRANSIENT_FAILURE,
        ):
            self._start_connecting()
        return self._state

    async def wait_for_state_change(self, last_observed_state: ChannelConnectivity) -> None:
        """Wait until the state differs from ``last_observed_state``."""
        if self._closed and last_observed_state is ChannelConnectivity.SHUTDOWN:
            raise UsageError("Channel is closed")  # as grpcio: it would wait forever
        while self._refresh_state() is last_observed_state:
            waiter = asyncio.get_running_loop().create_future()
            self._state_waiters.append(waiter)
            if self._state is ChannelConnectivity.READY:
                # A dropped connection is noticed by polling the pools (they do not call back).
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(waiter), 0.5)
            else:
                await waiter

    async def channel_ready(self) -> None:
        """Connect if needed and wait until READY (retrying with backoff meanwhile)."""
        while True:
            state = self.get_state(try_to_connect=True)
            if state is ChannelConnectivity.READY:
                return
            if state is ChannelConnectivity.SHUTDOWN:
                raise UsageError("Channel is closed")
            await self.wait_for_state_change(state)

    def _start_connecting(self) -> None:
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.ensure_future(self._connect_loop())

    async def _connect_loop(self) -> None:
        """Connect every pool; on failure TRANSIENT_FAILURE, then retry after backoff."""
        while not self._closed:
            if self._target_error is not None:
                self._connect_failed()  # nothing to connect to, ever
                return
            self._set_state(ChannelConnectivity.CONNECTING)
            if not self._resolved:
                await self._resolve()
            try:
                for pool in self._pools:
                    await pool._acquire()
            except TransportError:
                self._connect_failed()
                await asyncio.sleep(self._backoff.next())
                continue
            self._connected()
            return

    # ------------------------------------------------------------------ grpc.aio.Channel

    async def __aenter__(self) -> Channel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self, grace: float | None = None) -> None:
        """Close the channel: calls in flight get ``grace`` seconds, then are cancelled."""
        if self._closed:
            return
        self._closed = True
        self._set_state(ChannelConnectivity.SHUTDOWN)
        if self._connecting is not None:
            self._connecting.cancel()
        calls = [call for call in self._calls if not call.done()]
        if calls and grace:
            waiters = [asyncio.ensure_future(_wait_done(call)) for call in calls]
            await asyncio.wait(waiters, timeout=grace)
            for waiter in waiters:
                waiter.cancel()
        for call in calls:
            call.cancel()  # as grpc.aio: what outlives the grace is cancelled locally
        for pool in self._pools:
            if self._owns_client or pool is not self._shared_pool:  # that one is the user's
                await pool.aclose()
        if self._owns_client:
            await self.http_client.aclose()

    def unary_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> UnaryUnaryMultiCallable:
        return UnaryUnaryMultiCallable(self, method, request_serializer, response_deserializer)

    def unary_stream(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> UnaryStreamMultiCallable:
        return UnaryStreamMultiCallable(self, method, request_serializer, response_deserializer)

    def stream_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> StreamUnaryMultiCallable:
        return StreamUnaryMultiCallable(self, method, request_serializer, response_deserializer)

    def stream_stream(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> StreamStreamMultiCallable:
        return StreamStreamMultiCallable(self, method, request_serializer, response_deserializer)

    def _check_open(self) -> None:
        if self._closed:
            raise UsageError("Channel is closed")


def _user_transport(client: httpx.AsyncClient, base_url: str) -> GrpcTransport:
    """The GrpcTransport a user's client routes the channel's origin to (its transport, or
    the one mounted for that origin)."""
    transport = client._transport_for_url(httpx.URL(base_url))
    if not isinstance(transport, GrpcTransport):
        raise TypeError(
            f"http_client sends {base_url} through {type(transport).__name__}, which cannot carry "
            "gRPC (no trailers, no full duplex): give it asgi_grpc's transport, "
            "httpx.AsyncClient(transport=GrpcTransport(verify=...)) or mount one for that origin"
        )
    return transport


async def _wait_done(call: Any) -> None:
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_done(_: Any) -> None:
        if not done.done():
            done.set_result(None)

    call.add_done_callback(on_done)
    await done


def _limit(value: Any, default: int | None) -> int | None:
    if value is None:
        return default
    value = int(value)
    return None if value < 0 else value


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _tls_name(address: Any, authority: str) -> str | None:
    """The name to check the server certificate against: the authority's host."""
    host = authority
    if host.startswith("["):
        return host[1 : host.index("]")]
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    if isinstance(address, TCPAddress) or host:
        return host
    return None


def insecure_channel(
    target: str,
    options: Sequence[ChannelArgument] | None = None,
    compression: Compression | None = None,
    interceptors: Sequence[Any] | None = None,
    *,
    http_client: httpx.AsyncClient | None = None,
) -> Channel:
    """grpc.aio.insecure_channel: h2c with prior knowledge.

    ``http_client`` (an asgi_grpc extra): make the calls over that client's GrpcTransport and
    connections, which its own requests to the same origin share."""
    return Channel(target, options, None, compression, interceptors, http_client)


def secure_channel(
    target: str,
    credentials: Any,
    options: Sequence[ChannelArgument] | None = None,
    compression: Compression | None = None,
    interceptors: Sequence[Any] | None = None,
    *,
    http_client: httpx.AsyncClient | None = None,
) -> Channel:
    """grpc.aio.secure_channel: TLS with ALPN h2.

    ``http_client``: as for :func:`insecure_channel`; TLS is then its transport's (``verify``),
    and ``credentials`` add only their call credentials."""
    if credentials is None:
        raise ValueError("secure_channel needs ChannelCredentials")
    return Channel(target, options, credentials, compression, interceptors, http_client)
