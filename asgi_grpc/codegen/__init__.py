"""Code generation for asgi_grpc: the ``protoc-gen-asgi_grpc`` plugin and its runtime twin.

- ``protoc-gen-asgi_grpc`` (:mod:`asgi_grpc.codegen.plugin`) writes ``<name>_pb2_asgi_grpc.py``
  (+ ``.pyi``) per .proto file: grpcio-tools' names (``XStub``, ``XServicer``,
  ``add_XServicer_to_server``, ``X``), importing asgi_grpc instead of grpc::

      python -m grpc_tools.protoc -I. --python_out=. --pyi_out=. --asgi_grpc_out=. echo.proto

- :func:`services_from_pb2` builds the same module at run time from a compiled ``_pb2`` module.
- :mod:`asgi_grpc.codegen.types`: the types generated ``.pyi`` files use.
- :mod:`asgi_grpc.codegen.runtime`: what generated modules call at run time.
"""

from ._build import services_from_pb2
from ._render import SUFFIX

__all__ = ["SUFFIX", "services_from_pb2"]
