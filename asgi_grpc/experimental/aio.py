"""grpc.experimental.aio: the old name of ``grpc.aio``, kept (as grpcio keeps it) for code
written before grpc.aio left experimental. Everything here is ``asgi_grpc.aio``'s."""

from __future__ import annotations

from ..aio import *  # noqa: F403
from ..aio import __all__ as __all__
