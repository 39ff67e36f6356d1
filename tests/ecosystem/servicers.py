"""Servicers written against the generated ``_pb2_asgi_grpc`` base classes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from .support import module

echo_pb2 = module("echo_pb2")
echo_asgi = module("echo_pb2_asgi_grpc")
types_pb2 = module("eco.common.types_pb2")
shop_pb2 = module("eco.shop.v1.shop_pb2")
shop_asgi = module("eco.shop.v1.shop_pb2_asgi_grpc")


class AsyncEcho(echo_asgi.EchoServicer):  # type: ignore[misc]
    async def Unary(self, request: Any, context: Any) -> Any:
        return echo_pb2.EchoResponse(message=request.message, payload=request.payload)

    async def ServerStream(self, request: Any, context: Any) -> AsyncIterator[Any]:
        for index in range(request.count):
            yield echo_pb2.EchoResponse(message=request.message, index=index)

    async def ClientStream(self, request_iterator: Any, context: Any) -> Any:
        words = [request.message async for request in request_iterator]
        return echo_pb2.EchoResponse(message=",".join(words), index=len(words))

    async def BidiStream(self, request_iterator: Any, context: Any) -> AsyncIterator[Any]:
        async for request in request_iterator:
            yield echo_pb2.EchoResponse(message=request.message.upper())


class SyncEcho(echo_asgi.EchoServicer):  # type: ignore[misc]
    """The same, as plain functions and generators (for thread-pool servers)."""

    def Unary(self, request: Any, context: Any) -> Any:
        return echo_pb2.EchoResponse(message=request.message, payload=request.payload)

    def ServerStream(self, request: Any, context: Any) -> Iterator[Any]:
        for index in range(request.count):
            yield echo_pb2.EchoResponse(message=request.message, index=index)

    def ClientStream(self, request_iterator: Any, context: Any) -> Any:
        words = [request.message for request in request_iterator]
        return echo_pb2.EchoResponse(message=",".join(words), index=len(words))

    def BidiStream(self, request_iterator: Any, context: Any) -> Iterator[Any]:
        for request in request_iterator:
            yield echo_pb2.EchoResponse(message=request.message.upper())


ITEMS = {
    "bolt": types_pb2.Item(name="bolt", count=3, tags=[types_pb2.Item.Tag(key="bolt")]),
    "nut": types_pb2.Item(name="nut", count=5, tags=[types_pb2.Item.Tag(key="nut")]),
}


class Inventory(shop_asgi.InventoryServicer):  # type: ignore[misc]
    async def Get(self, request: Any, context: Any) -> Any:
        return ITEMS[request.key]

    async def List(self, request: Any, context: Any) -> AsyncIterator[Any]:
        for item in ITEMS.values():
            yield item


class Orders(shop_asgi.OrdersServicer):  # type: ignore[misc]
    """Upload is left to the generated base class: it answers UNIMPLEMENTED."""

    async def Chat(self, request_iterator: Any, context: Any) -> AsyncIterator[Any]:
        async for item in request_iterator:
            yield types_pb2.Item(name=item.name[::-1], count=item.count * 2)


def register_echo(server: Any, servicer: Any = None) -> None:
    echo_asgi.add_EchoServicer_to_server(servicer or AsyncEcho(), server)


def register_shop(server: Any) -> None:
    shop_asgi.add_InventoryServicer_to_server(Inventory(), server)
    shop_asgi.add_OrdersServicer_to_server(Orders(), server)
