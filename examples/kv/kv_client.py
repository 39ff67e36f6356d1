"""The kv example client, on asgi_grpc's grpc.aio-style client (README: "Client").

    python examples/kv/kv_client.py 127.0.0.1:50051

``import grpc.aio as aio`` in place of ``asgi_grpc.aio`` would run the same calls on grpcio.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from typing import Any

import kv_codegen

import asgi_grpc
import asgi_grpc.aio as aio
from asgi_grpc import health

kv_pb2, kv_grpc = kv_codegen.load()


async def run(target: str) -> None:
    async with aio.insecure_channel(target) as channel:
        status = await health.HealthStub(channel).Check(
            health.HealthCheckRequest(service="kv.v1.KeyValue"), timeout=10
        )
        print("health:", health.HealthCheckResponse.ServingStatus.Name(status.status))

        kv = kv_grpc.KeyValueStub(channel)
        reply = await kv.Put(kv_pb2.Item(key="greeting", value="hello"), timeout=10)
        print("put greeting: created =", reply.created)
        item = await kv.Get(kv_pb2.GetRequest(key="greeting"), timeout=10)
        print("get greeting:", item.value)

        async def items() -> AsyncIterator[Any]:
            for n in range(3):
                yield kv_pb2.Item(key=f"user/{n}", value=f"user number {n}")

        imported = await kv.Import(items(), timeout=10)
        print("imported:", imported.imported)
        async for listed in kv.List(kv_pb2.ListRequest(prefix="user/"), timeout=10):
            print("list:", listed.key, "=", listed.value)

        try:
            await kv.Get(kv_pb2.GetRequest(key="missing"), timeout=10)
        except aio.AioRpcError as error:
            if error.code() != asgi_grpc.StatusCode.NOT_FOUND:
                raise
            print("get missing:", error.code().name, error.details())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="the kv example client")
    parser.add_argument("target", nargs="?", default="127.0.0.1:50051", help="host:port")
    asyncio.run(run(parser.parse_args().target))
