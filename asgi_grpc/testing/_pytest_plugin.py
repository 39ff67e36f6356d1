"""asgi_grpc's pytest plugin (entry point ``pytest11``): fixtures for testing gRPC ASGI apps.

Override ``grpc_app`` to return the app under test (a ``GrpcApp``, or an ASGI app mounting
one), then use:

- ``grpc_channel``: an in-memory ``grpc.aio`` channel to it (async; lifespan per
  ``grpc_lifespan``, default ``"auto"``);
- ``grpc_blocking_channel``: the same as a blocking ``grpc.Channel`` (for plain sync tests);
- ``grpc_server``: the app on a real Hypercorn at 127.0.0.1 on a free port (a ``LiveServer``:
  ``.target``, ``.url``), and ``grpc_server_channel``: an asgi_grpc aio channel to it.

This module imports nothing but pytest at load time: asgi_grpc's testing code is imported
by the fixtures, when a test asks for them. Async fixtures need an asyncio pytest plugin
(pytest-asyncio, which the fixtures are registered with when it is installed).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pytest

if TYPE_CHECKING:
    from asgi_grpc._sync._channel import Channel as BlockingChannel
    from asgi_grpc.client._channel import Channel as AioChannel
    from asgi_grpc.testing import LiveServer

_F = TypeVar("_F", bound=Callable[..., Any])
_register: Any
try:  # registered with pytest-asyncio when it is there, so its strict mode works too
    from pytest_asyncio import fixture as _register
except ImportError:  # pragma: no cover - another asyncio plugin (or none) runs them
    _register = pytest.fixture


def _async_fixture(function: _F) -> _F:
    return cast(_F, _register(function))


@pytest.fixture
def grpc_app() -> Any:
    """The ASGI app under test: override this fixture in your conftest.py or test module."""
    raise pytest.UsageError(
        "asgi_grpc's gRPC fixtures need the app under test: define a fixture named 'grpc_app' "
        "that returns it (a GrpcApp, or an ASGI app that mounts one)"
    )


@pytest.fixture
def grpc_lifespan() -> Any:
    """Lifespan mode of ``grpc_channel`` / ``grpc_blocking_channel``: ``"auto"`` (run it if the
    app supports it, as Hypercorn does), ``True`` (required) or ``False``. Override to change."""
    return "auto"


@pytest.fixture
def grpc_channel_options() -> list[tuple[str, Any]]:
    """Channel options for every channel these fixtures make. Override to change."""
    return []


@_async_fixture
async def grpc_channel(
    grpc_app: Any, grpc_lifespan: Any, grpc_channel_options: list[tuple[str, Any]]
) -> AsyncIterator[AioChannel]:
    """An in-memory ``grpc.aio`` channel to ``grpc_app`` (no sockets)."""
    from asgi_grpc.testing import channel_for

    async with channel_for(
        grpc_app, lifespan=grpc_lifespan, options=grpc_channel_options
    ) as channel:
        yield channel


@pytest.fixture
def grpc_blocking_channel(
    grpc_app: Any, grpc_lifespan: Any, grpc_channel_options: list[tuple[str, Any]]
) -> Iterator[BlockingChannel]:
    """An in-memory blocking ``grpc.Channel`` to ``grpc_app`` (no sockets)."""
    from asgi_grpc.testing import blocking_channel_for

    channel = blocking_channel_for(grpc_app, lifespan=grpc_lifespan, options=grpc_channel_options)
    try:
        yield channel
    finally:
        channel.close()


@_async_fixture
async def grpc_server(grpc_app: Any) -> AsyncIterator[LiveServer]:
    """``grpc_app`` served by Hypercorn on 127.0.0.1, on a free port, lifespan included."""
    from asgi_grpc.testing import serve

    async with serve(grpc_app) as server:
        yield server


@_async_fixture
async def grpc_server_channel(
    grpc_server: LiveServer, grpc_channel_options: list[tuple[str, Any]]
) -> AsyncIterator[AioChannel]:
    """An asgi_grpc ``grpc.aio`` channel to ``grpc_server``, over a real socket."""
    async with grpc_server.channel(options=grpc_channel_options) as channel:
        yield channel
