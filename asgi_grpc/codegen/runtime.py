"""What generated ``_pb2_asgi_grpc`` modules call at run time (a public, stable surface).

- :data:`POOL`, :func:`add_serialized_file`, :func:`message_class`: modules generated with the
  ``embed_messages`` option register their file here and build their message classes from it.
- :func:`unary_unary` and the three others: the static ``X.Method(request, target, ...)`` calls
  (grpcio's ``grpc.experimental`` one-off calls), on asgi_grpc's synchronous channels, one cached
  channel per target and settings.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from google.protobuf import descriptor, descriptor_pb2, descriptor_pool, message, message_factory
from google.protobuf.internal import enum_type_wrapper

POOL = descriptor_pool.DescriptorPool()
"""asgi_grpc's own descriptor pool, apart from protobuf's default pool.

The protos asgi_grpc ships (health, reflection) define the same message names as grpcio's packages
(``grpc.health.v1.HealthCheckRequest``...). Registering them in the default pool would fail as soon
as both are imported in one process; a private pool lets them coexist, and the reflection service
searches this pool after the default one."""


def add_serialized_file(serialized: bytes) -> descriptor.FileDescriptor:
    """Add a serialized ``FileDescriptorProto`` to :data:`POOL` (idempotent) and return its file."""
    proto = descriptor_pb2.FileDescriptorProto.FromString(serialized)
    try:
        return POOL.FindFileByName(proto.name)
    except KeyError:
        pass
    POOL.Add(proto)
    return POOL.FindFileByName(proto.name)


def message_class(file: descriptor.FileDescriptor, name: str) -> type[message.Message]:
    """The message class for the top-level message ``name`` of ``file``."""
    return message_factory.GetMessageClass(file.message_types_by_name[name])


# ---------------------------------------------------------------------- static (one-off) calls

_channels: dict[tuple[Any, ...], Any] = {}
_channels_lock = threading.Lock()


def _channel(
    target: str,
    options: Sequence[tuple[str, Any]],
    channel_credentials: Any,
    insecure: bool,
    compression: Any,
) -> Any:
    import asgi_grpc

    make_insecure = getattr(asgi_grpc, "insecure_channel", None)
    make_secure = getattr(asgi_grpc, "secure_channel", None)
    if make_insecure is None or make_secure is None:
        raise NotImplementedError(
            "static stub calls (X.Method(request, target)) need asgi_grpc's synchronous channels "
            "(asgi_grpc.insecure_channel), which this asgi_grpc version does not have: create a "
            "channel and use XStub(channel) instead"
        )
    if insecure and channel_credentials is not None:
        raise ValueError("insecure=True and channel_credentials are mutually exclusive")
    # Credentials objects hash by identity: the same object reuses the channel.
    key = (target, tuple(options), channel_credentials, insecure, compression)
    with _channels_lock:
        channel = _channels.get(key)
        if channel is None:
            if insecure:
                channel = make_insecure(target, options=options, compression=compression)
            else:
                credentials = channel_credentials or asgi_grpc.ssl_channel_credentials()
                channel = make_secure(target, credentials, options=options, compression=compression)
            _channels[key] = channel
        return channel


def _static_call(
    kind: str,
    request: Any,
    target: str,
    method: str,
    request_serializer: Callable[[Any], bytes],
    response_deserializer: Callable[[bytes], Any],
    options: Sequence[tuple[str, Any]] = (),
    channel_credentials: Any = None,
    insecure: bool = False,
    call_credentials: Any = None,
    compression: Any = None,
    wait_for_ready: bool | None = None,
    timeout: float | None = None,
    metadata: Any = None,
) -> Any:
    channel = _channel(target, options, channel_credentials, insecure, compression)
    multicallable = getattr(channel, kind)(
        method,
        request_serializer=request_serializer,
        response_deserializer=response_deserializer,
        _registered_method=True,
    )
    return multicallable(
        request,
        timeout=timeout,
        metadata=metadata,
        credentials=call_credentials,
        wait_for_ready=wait_for_ready,
        compression=compression,
    )


def unary_unary(request: Any, target: str, method: str, *args: Any) -> Any:
    """grpc.experimental.unary_unary: one call on a cached sync channel; returns the response."""
    return _static_call("unary_unary", request, target, method, *args)


def unary_stream(request: Any, target: str, method: str, *args: Any) -> Any:
    """grpc.experimental.unary_stream: returns the response iterator."""
    return _static_call("unary_stream", request, target, method, *args)


def stream_unary(request_iterator: Any, target: str, method: str, *args: Any) -> Any:
    """grpc.experimental.stream_unary: returns the response."""
    return _static_call("stream_unary", request_iterator, target, method, *args)


def stream_stream(request_iterator: Any, target: str, method: str, *args: Any) -> Any:
    """grpc.experimental.stream_stream: returns the response iterator."""
    return _static_call("stream_stream", request_iterator, target, method, *args)


def enum_type(file: descriptor.FileDescriptor, name: str) -> enum_type_wrapper.EnumTypeWrapper:
    """The enum wrapper (``Name.Value("X")``, ``Name.X``) for the top-level enum ``name``."""
    return enum_type_wrapper.EnumTypeWrapper(file.enum_types_by_name[name])
