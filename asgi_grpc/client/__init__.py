"""The asgi_grpc client: a grpc.aio Channel on an httpx HTTP/2 pool."""

from ._base import RpcContext
from ._call import Call
from ._call_kinds import StreamStreamCall, StreamUnaryCall, UnaryStreamCall, UnaryUnaryCall
from ._channel import Channel, insecure_channel, secure_channel
from ._multicallable import (
    StreamStreamMultiCallable,
    StreamUnaryMultiCallable,
    UnaryStreamMultiCallable,
    UnaryUnaryMultiCallable,
)
from ._rpc_error import AioRpcError
from ._transport import GrpcTransport

__all__ = [
    "AioRpcError",
    "Call",
    "Channel",
    "GrpcTransport",
    "RpcContext",
    "StreamStreamCall",
    "StreamStreamMultiCallable",
    "StreamUnaryCall",
    "StreamUnaryMultiCallable",
    "UnaryStreamCall",
    "UnaryStreamMultiCallable",
    "UnaryUnaryCall",
    "UnaryUnaryMultiCallable",
    "insecure_channel",
    "secure_channel",
]
