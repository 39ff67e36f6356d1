"""The app of ``asgi-grpc serve --server pyvoy``: Envoy's embedded Python imports
``asgi_grpc.cli._pyvoy_app:app`` (pyvoy takes a ``module:attribute`` name, not a factory), built
from the serve settings ``asgi-grpc serve`` put in the environment (:data:`_serve.ENV`)."""

from __future__ import annotations

from ..server._types import ASGIApp
from ._serve import load_app
from ._servers import PyvoyAdapter

app: ASGIApp = PyvoyAdapter(load_app())
