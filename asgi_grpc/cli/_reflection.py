"""A server reflection client that fills a private descriptor pool.

One ``ServerReflectionInfo`` stream per session, ``grpc.reflection.v1`` first and
``v1alpha`` when the server does not implement v1 (grpcio-reflection before 1.62, older tools).
Files arrive as serialized ``FileDescriptorProto``s; each is added to the pool after its
dependencies, and dependencies the server did not send along are asked for by file name.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

from google.protobuf import descriptor, descriptor_pb2, descriptor_pool

from .._core import StatusCode, status_from_int
from .._errors import EOF
from ..client import AioRpcError, Channel
from ..reflection import _v1_pb2_asgi_grpc as v1
from ..reflection import _v1alpha_pb2_asgi_grpc as v1alpha
from ._errors import RpcFailure

_VERSIONS: tuple[tuple[str, ModuleType], ...] = (
    ("grpc.reflection.v1.ServerReflection", v1),
    ("grpc.reflection.v1alpha.ServerReflection", v1alpha),
)

Symbol = (
    descriptor.ServiceDescriptor
    | descriptor.MethodDescriptor
    | descriptor.Descriptor
    | descriptor.EnumDescriptor
)


class ReflectionClient:
    """Asks a server for its services and descriptors; use as ``async with``."""

    def __init__(
        self,
        channel: Channel,
        *,
        metadata: Sequence[tuple[str, str | bytes]] = (),
        timeout: float | None = None,
    ) -> None:
        self._channel = channel
        self._metadata = tuple(metadata)
        self._timeout = timeout
        self._versions = list(_VERSIONS)
        self._call: Any = None
        self._proto: ModuleType = v1
        self.pool = descriptor_pool.DescriptorPool()
        self._files: dict[str, descriptor_pb2.FileDescriptorProto] = {}

    async def __aenter__(self) -> ReflectionClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._call is not None:
            call, self._call = self._call, None
            call.cancel()

    # ------------------------------------------------------------------ questions

    async def list_services(self) -> list[str]:
        response = await self._ask(list_services="")
        return sorted(s.name for s in response.list_services_response.service)

    async def symbol(self, name: str) -> Symbol:
        """The descriptor of a service, method, message or enum by its full name."""
        name = name.lstrip(".")
        found = self._find(name)
        if found is not None:
            return found
        try:
            await self._load(file_containing_symbol=name)
        except RpcFailure as failure:
            # Servers differ on methods and nested types: ask for the enclosing symbol.
            parent = name.rpartition(".")[0]
            if failure.code is not StatusCode.NOT_FOUND or not parent:
                raise
            try:
                await self._load(file_containing_symbol=parent)
            except RpcFailure:
                raise failure from None
        found = self._find(name)
        if found is None:
            raise RpcFailure(StatusCode.NOT_FOUND, f"symbol not found: {name}")
        return found

    async def service(self, name: str) -> descriptor.ServiceDescriptor:
        found = await self.symbol(name)
        if not isinstance(found, descriptor.ServiceDescriptor):
            raise RpcFailure(StatusCode.NOT_FOUND, f"{name} is not a service")
        return found

    # ------------------------------------------------------------------ the pool

    def _find(self, name: str) -> Symbol | None:
        pool = self.pool
        for lookup in (
            pool.FindServiceByName,
            pool.FindMessageTypeByName,
            pool.FindEnumTypeByName,
            pool.FindMethodByName,
        ):
            try:
                found: Symbol = lookup(name)
            except KeyError:
                continue
            return found
        return None

    async def _load(self, **request: Any) -> None:
        response = await self._ask(**request)
        names = self._store(response.file_descriptor_response.file_descriptor_proto)
        for name in names:
            await self._build(name, ())

    def _store(self, serialized: Sequence[bytes]) -> list[str]:
        names = []
        for data in serialized:
            proto = descriptor_pb2.FileDescriptorProto.FromString(data)
            self._files.setdefault(proto.name, proto)
            names.append(proto.name)
        return names

    async def _build(self, name: str, chain: tuple[str, ...]) -> None:
        """Add file ``name`` to the pool, its dependencies first (fetched when missing)."""
        try:
            self.pool.FindFileByName(name)
        except KeyError:
            pass
        else:
            return
        if name in chain:
            raise RpcFailure(StatusCode.INTERNAL, f"import cycle in {' -> '.join((*chain, name))}")
        proto = self._files.get(name)
        if proto is None:
            response = await self._ask(file_by_filename=name)
            self._store(response.file_descriptor_response.file_descriptor_proto)
            proto = self._files.get(name)
            if proto is None:
                raise RpcFailure(StatusCode.NOT_FOUND, f"the server did not send file {name}")
        for dependency in proto.dependency:
            await self._build(dependency, (*chain, name))
        self.pool.Add(proto)

    # ------------------------------------------------------------------ the stream

    async def _ask(self, **request: Any) -> Any:
        """One request/response exchange on the reflection stream."""
        while True:
            try:
                response = await self._exchange(request)
            except AioRpcError as error:
                await self.close()
                code = error.code()
                if code is StatusCode.UNIMPLEMENTED and len(self._versions) > 1:
                    self._versions.pop(0)
                    continue
                if code is StatusCode.UNIMPLEMENTED:
                    raise RpcFailure(code, "the server does not support the reflection API")
                raise RpcFailure(code, error.details() or "") from None
            # Once a version has answered, stay with it.
            del self._versions[1:]
            if response.WhichOneof("message_response") == "error_response":
                err = response.error_response
                raise RpcFailure(status_from_int(err.error_code), err.error_message)
            return response

    async def _exchange(self, request: dict[str, Any]) -> Any:
        path, proto = self._versions[0]
        if self._call is None:
            self._proto = proto
            multicallable = self._channel.stream_stream(
                f"/{path}/ServerReflectionInfo",
                request_serializer=_serialize,
                response_deserializer=proto.ServerReflectionResponse.FromString,
            )
            self._call = multicallable(metadata=self._metadata, timeout=self._timeout)
        await self._call.write(self._proto.ServerReflectionRequest(**request))
        response = await self._call.read()
        if response is EOF:
            code = await self._call.code()
            details = await self._call.details()
            await self.close()
            raise RpcFailure(
                StatusCode.INTERNAL if code is StatusCode.OK else code,
                details or "the reflection stream ended without an answer",
            )
        return response


def _serialize(message: Any) -> bytes:
    data: bytes = message.SerializeToString()
    return data
