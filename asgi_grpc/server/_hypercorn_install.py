"""Putting asgi_grpc's HTTP/2 protocol into Hypercorn: :func:`install`.

Hypercorn is patched here and nowhere else, at three module globals, each checked first and
guarded by version (``hypercorn`` 0.18.x, ``h2`` 4.x), so a release that moved them fails loudly
at install instead of serving without the fixes (``tests/hypercorn/test_config.py``,
``tests/server/test_socket_input.py``):

- ``hypercorn.protocol.H2Protocol`` becomes :class:`~._hypercorn.GrpcH2Protocol` (and
  ``H11Protocol`` :class:`~._hypercorn_h11.GrpcH11Protocol`): ``ProtocolWrapper`` looks both up in
  its module's globals each time it builds a connection's protocol;
- ``hypercorn.asyncio.run.TCPServer`` becomes :class:`~._hypercorn_tcp.GrpcTCPServer`;
- ``hypercorn.asyncio.tcp_server.MAX_RECV`` becomes :data:`~._hypercorn.READ_SIZE`.
"""

from __future__ import annotations

import inspect
from typing import Any

import hypercorn.asyncio.run
import hypercorn.asyncio.tcp_server
import hypercorn.protocol
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.protocol.h2 import H2Protocol
from hypercorn.protocol.h11 import H11Protocol

from .. import _hyperframe
from .._versions import installed_version
from ._hypercorn import READ_SIZE, GrpcH2Protocol
from ._hypercorn_h11 import GrpcH11Protocol
from ._hypercorn_tcp import GrpcTCPServer

__all__ = ["install", "is_installed"]

_SUPPORTED = "0.18."

# The module whose ProtocolWrapper builds HTTP/2 protocols, the one whose TCPServer reads
# MAX_RECV bytes at a time, and the one whose worker serves each connection with a TCPServer
# (typed Any: we assign their globals).
_wrapper_module: Any = hypercorn.protocol
_tcp_server_module: Any = hypercorn.asyncio.tcp_server
_run_module: Any = hypercorn.asyncio.run


def is_installed() -> bool:
    return _wrapper_module.H2Protocol is GrpcH2Protocol


_H2_SUPPORTED = "4."


def _reads_as_expected(server: type) -> bool:
    """Hypercorn's TCPServer as GrpcTCPServer overrides it: ``run`` and ``_read_data``
    coroutines, a ``reader`` and a ``writer`` given to ``__init__``."""
    parameters = inspect.signature(server).parameters
    return (
        inspect.iscoroutinefunction(getattr(server, "run", None))
        and inspect.iscoroutinefunction(getattr(server, "_read_data", None))
        and "reader" in parameters
        and "writer" in parameters
    )


def install() -> None:
    """Make every HTTP/2 connection Hypercorn accepts in this process use :class:`GrpcH2Protocol`.

    Idempotent. ``hypercorn.protocol.ProtocolWrapper`` looks ``H2Protocol`` (and ``H11Protocol``)
    up in its module's globals each time it builds a protocol, so replacing those names is
    enough; ``H11Protocol`` becomes :class:`GrpcH11Protocol` (garbage instead of a request is
    refused at once). Hypercorn's asyncio worker serves each connection with
    :class:`~._hypercorn_tcp.GrpcTCPServer` (its sockets read without a ``StreamReader``'s copies;
    ``asgi_grpc``'s own server uses it directly). Also makes hyperframe's DATA frame ``repr``
    cheap (same output; see :mod:`asgi_grpc._hyperframe`).
    """
    if is_installed():
        return
    found = installed_version("hypercorn")
    if not found.startswith(_SUPPORTED):
        raise RuntimeError(
            f"asgi_grpc patches Hypercorn {_SUPPORTED}x internals, found Hypercorn {found}: "
            "install hypercorn>=0.18,<0.19"
        )
    found = installed_version("h2")
    if not found.startswith(_H2_SUPPORTED):
        raise RuntimeError(
            f"asgi_grpc extends h2 {_H2_SUPPORTED}x internals, found h2 {found}: install h2>=4.1,<5"
        )
    if _wrapper_module.H2Protocol is not H2Protocol:
        raise RuntimeError(
            "hypercorn.protocol.H2Protocol was already replaced by someone else "
            f"({_wrapper_module.H2Protocol!r}); refusing to stack patches"
        )
    if not isinstance(getattr(_tcp_server_module, "MAX_RECV", None), int):
        raise RuntimeError(
            "hypercorn.asyncio.tcp_server.MAX_RECV is gone: Hypercorn changed how it reads "
            "its sockets; asgi_grpc's read size needs updating"
        )
    if _run_module.TCPServer not in (TCPServer, GrpcTCPServer) or not _reads_as_expected(TCPServer):
        raise RuntimeError(
            "hypercorn.asyncio's TCPServer is not the one asgi_grpc knows (replaced, or its "
            "run/_read_data/reader/writer changed): asgi_grpc's socket reader needs updating"
        )
    _wrapper_module.H2Protocol = GrpcH2Protocol
    _tcp_server_module.MAX_RECV = READ_SIZE  # (read size of a connection GrpcTCPServer leaves)
    _run_module.TCPServer = GrpcTCPServer
    if _wrapper_module.H11Protocol is H11Protocol:
        _wrapper_module.H11Protocol = GrpcH11Protocol
    _hyperframe.install()
