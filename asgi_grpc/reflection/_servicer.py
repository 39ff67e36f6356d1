"""gRPC server reflection (``grpc.reflection.v1`` and ``v1alpha``) on asgi_grpc servers.

Answers come from descriptor pools: protobuf's default pool (where every imported ``_pb2`` module
registers its file) and then asgi_grpc's own pool (the health and reflection protos asgi_grpc
ships, see :data:`asgi_grpc.codegen.runtime.POOL`), unless a pool is given.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from types import ModuleType
from typing import Any

from google.protobuf import descriptor, descriptor_pb2, descriptor_pool

from .._core import StatusCode
from ..codegen import runtime
from ..server import ServicerContext
from . import _v1_pb2_asgi_grpc as v1
from . import _v1alpha_pb2_asgi_grpc as v1alpha

SERVICE_NAME = "grpc.reflection.v1alpha.ServerReflection"
"""grpcio-reflection's name for the service (v1alpha); listing it lists v1 as well."""
V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"
_REFLECTION_NAMES = (V1_SERVICE_NAME, SERVICE_NAME)


class _NotFound(Exception):
    pass


class _Reflection:
    """The answers, independent of the protocol version (v1 and v1alpha have the same messages
    in different packages: ``proto`` is the generated module of one of them)."""

    def __init__(
        self,
        proto: ModuleType,
        service_names: Iterable[str],
        pool: descriptor_pool.DescriptorPool | None,
    ) -> None:
        self._proto = proto
        names = list(dict.fromkeys(service_names))
        if any(name in _REFLECTION_NAMES for name in names):
            names += [name for name in _REFLECTION_NAMES if name not in names]
        self._service_names = tuple(sorted(names))
        self._pools: Sequence[descriptor_pool.DescriptorPool] = (
            (pool,) if pool is not None else (descriptor_pool.Default(), runtime.POOL)
        )

    async def answers(self, requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for request in requests:
            yield self.answer(request)

    def answer(self, request: Any) -> Any:
        proto = self._proto
        kind = request.WhichOneof("message_request")
        try:
            if kind == "file_by_filename":
                files = self._files(
                    self._find(lambda p: p.FindFileByName(request.file_by_filename))
                )
            elif kind == "file_containing_symbol":
                files = self._files(self._file_of_symbol(request.file_containing_symbol))
            elif kind == "file_containing_extension":
                ask = request.file_containing_extension
                files = self._files(self._extension(ask.containing_type, ask.extension_number))
            elif kind == "all_extension_numbers_of_type":
                name = request.all_extension_numbers_of_type
                numbers = self._find(
                    lambda p: sorted(e.number for e in p.FindAllExtensions(_message(p, name)))
                )
                return proto.ServerReflectionResponse(
                    original_request=request,
                    all_extension_numbers_response=proto.ExtensionNumberResponse(
                        base_type_name=name, extension_number=numbers
                    ),
                )
            elif kind == "list_services":
                return proto.ServerReflectionResponse(
                    original_request=request,
                    list_services_response=proto.ListServiceResponse(
                        service=[proto.ServiceResponse(name=n) for n in self._service_names]
                    ),
                )
            else:
                return self._error(request, StatusCode.INVALID_ARGUMENT, "no request set")
        except _NotFound as missing:
            return self._error(request, StatusCode.NOT_FOUND, str(missing))
        return proto.ServerReflectionResponse(
            original_request=request,
            file_descriptor_response=proto.FileDescriptorResponse(file_descriptor_proto=files),
        )

    # ------------------------------------------------------------------ lookups

    def _find(self, lookup: Any) -> Any:
        """``lookup(pool)`` in the first pool that has the answer."""
        for pool in self._pools:
            with contextlib.suppress(KeyError):
                return lookup(pool)
        raise _NotFound("not found")

    def _file_of_symbol(self, symbol: str) -> descriptor.FileDescriptor:
        def lookup(pool: descriptor_pool.DescriptorPool) -> descriptor.FileDescriptor:
            try:
                found: descriptor.FileDescriptor = pool.FindFileContainingSymbol(symbol)
                return found
            except KeyError:
                # Pools know services but not their methods by full name ("pkg.Svc.Method").
                service_name, _, method = symbol.rpartition(".")
                service = pool.FindServiceByName(service_name)
                if method not in service.methods_by_name:
                    raise
                file: descriptor.FileDescriptor = service.file
                return file

        try:
            result: descriptor.FileDescriptor = self._find(lookup)
        except _NotFound:
            raise _NotFound(f"symbol not found: {symbol}") from None
        return result

    def _extension(self, containing_type: str, number: int) -> descriptor.FileDescriptor:
        def lookup(pool: descriptor_pool.DescriptorPool) -> descriptor.FileDescriptor:
            extension = pool.FindExtensionByNumber(_message(pool, containing_type), number)
            file: descriptor.FileDescriptor = pool.FindFileContainingSymbol(extension.full_name)
            return file

        try:
            result: descriptor.FileDescriptor = self._find(lookup)
        except _NotFound:
            raise _NotFound(f"extension {number} of {containing_type} not found") from None
        return result

    @staticmethod
    def _files(file: descriptor.FileDescriptor) -> list[bytes]:
        """The file, then its transitive dependencies (each once): a client can build the file
        from this one answer."""
        ordered: list[descriptor.FileDescriptor] = []
        seen: set[str] = set()
        pending = [file]
        while pending:
            current = pending.pop(0)
            if current.name in seen:
                continue
            seen.add(current.name)
            ordered.append(current)
            pending.extend(current.dependencies)
        out = []
        for item in ordered:
            proto = descriptor_pb2.FileDescriptorProto()
            item.CopyToProto(proto)
            out.append(proto.SerializeToString())
        return out

    def _error(self, request: Any, code: StatusCode, message: str) -> Any:
        return self._proto.ServerReflectionResponse(
            original_request=request,
            error_response=self._proto.ErrorResponse(
                error_code=code.value[0], error_message=message
            ),
        )


def _message(pool: descriptor_pool.DescriptorPool, name: str) -> descriptor.Descriptor:
    found: descriptor.Descriptor = pool.FindMessageTypeByName(name)
    return found


class ReflectionServicer(v1.ServerReflectionServicer):
    """grpc.reflection.v1.ServerReflection."""

    def __init__(
        self,
        service_names: Iterable[str],
        pool: descriptor_pool.DescriptorPool | None = None,
    ) -> None:
        self._reflection = _Reflection(v1, service_names, pool)

    async def ServerReflectionInfo(
        self,
        request_iterator: AsyncIterator[v1.ServerReflectionRequest],
        context: ServicerContext,
    ) -> AsyncIterator[v1.ServerReflectionResponse]:
        async for answer in self._reflection.answers(request_iterator):
            yield answer


class V1AlphaReflectionServicer(v1alpha.ServerReflectionServicer):
    """grpc.reflection.v1alpha.ServerReflection (what grpcio-reflection and older tools use)."""

    def __init__(
        self,
        service_names: Iterable[str],
        pool: descriptor_pool.DescriptorPool | None = None,
    ) -> None:
        self._reflection = _Reflection(v1alpha, service_names, pool)

    async def ServerReflectionInfo(
        self,
        request_iterator: AsyncIterator[v1alpha.ServerReflectionRequest],
        context: ServicerContext,
    ) -> AsyncIterator[v1alpha.ServerReflectionResponse]:
        async for answer in self._reflection.answers(request_iterator):
            yield answer


def enable_server_reflection(
    service_names: Iterable[str],
    server: Any,
    pool: descriptor_pool.DescriptorPool | None = None,
) -> None:
    """grpc_reflection.v1alpha.reflection.enable_server_reflection, serving v1 and v1alpha.

    ``service_names``: the fully qualified services to list (include :data:`SERVICE_NAME` to list
    reflection itself); ``server``: an asgi_grpc server or ``GrpcApp``; ``pool``: where to look
    descriptors up (default: protobuf's default pool, then asgi_grpc's own).
    """
    names = tuple(service_names)
    v1.add_ServerReflectionServicer_to_server(ReflectionServicer(names, pool), server)
    v1alpha.add_ServerReflectionServicer_to_server(V1AlphaReflectionServicer(names, pool), server)
