"""Sync client interceptors: ``asgi_grpc.intercept_channel`` with grpc's semantics, for
interceptors derived from asgi_grpc's base classes and from grpcio's."""

from __future__ import annotations

import collections
from collections.abc import Iterator
from typing import Any

import grpc as real_grpc
import pytest

import asgi_grpc as grpc

from .conftest import Running
from .servicer import pb2, pb2_grpc

Request = pb2.EchoRequest


class _Details(
    collections.namedtuple(
        "_Details",
        ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression"),
    ),
    grpc.ClientCallDetails,
):
    pass


def _with_metadata(details: Any, key: str, value: str) -> _Details:
    metadata = [*(details.metadata or ()), (key, value)]
    return _Details(
        details.method,
        details.timeout,
        metadata,
        details.credentials,
        details.wait_for_ready,
        details.compression,
    )


class AddMetadata(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds ``added: <name>`` to every call and records what it saw."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: list[tuple[str, str]] = []

    def _go(self, kind: str, continuation: Any, details: Any, request: Any) -> Any:
        self.seen.append((kind, details.method))
        return continuation(_with_metadata(details, "added", self.name), request)

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return self._go("unary_unary", continuation, details, request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return self._go("unary_stream", continuation, details, request)

    def intercept_stream_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return self._go("stream_unary", continuation, details, request)

    def intercept_stream_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return self._go("stream_stream", continuation, details, request)


def test_every_kind_is_intercepted_in_order(h2c_peer: Running) -> None:
    first, second = AddMetadata("first"), AddMetadata("second")
    channel = grpc.intercept_channel(h2c_peer.channel(), first, second)
    stub = pb2_grpc.EchoStub(channel)
    # The server echoes the "added" entries it received: first's, then second's.
    echoed = stub.Unary(Request(message="invocation")).message
    assert echoed == repr([("added", "first"), ("added", "second")])
    assert [m.index for m in stub.ServerStream(Request(count=3))] == [0, 1, 2]
    assert stub.ClientStream(iter([Request()] * 2)).index == 2
    assert len(list(stub.BidiStream(iter([Request()] * 2)))) == 2
    _, call = stub.Unary.with_call(Request(message="x"))
    assert call.code() is grpc.StatusCode.OK
    assert stub.Unary.future(Request(message="f")).result(timeout=10).message == "f"
    kinds = [kind for kind, _ in first.seen]
    assert kinds == [
        "unary_unary",
        "unary_stream",
        "stream_unary",
        "stream_stream",
        "unary_unary",
        "unary_unary",
    ]
    assert first.seen == second.seen
    assert first.seen[0][1] == "/asgi_grpc.test.Echo/Unary"


class Observe(grpc.UnaryUnaryClientInterceptor):
    """Looks at the outcome: the continuation returns a Call+Future, never raises."""

    def __init__(self) -> None:
        self.codes: list[Any] = []

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        outcome = continuation(details, request)
        assert isinstance(outcome, grpc.Future)
        self.codes.append(outcome.code())
        return outcome


def test_failing_call_through_interceptor(h2c_peer: Running) -> None:
    observe = Observe()
    stub = pb2_grpc.EchoStub(grpc.intercept_channel(h2c_peer.channel(), observe))
    with pytest.raises(grpc.RpcError) as info:
        stub.Unary(Request(message="abort:ABORTED:stop"))
    assert info.value.code() is grpc.StatusCode.ABORTED
    assert observe.codes == [grpc.StatusCode.ABORTED]


class Retry(grpc.UnaryUnaryClientInterceptor):
    """Replaces a failed call with a second one (a retrying interceptor)."""

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        outcome = continuation(details, request)
        if outcome.code() is not grpc.StatusCode.OK:
            return continuation(details, Request(message="retried"))
        return outcome


def test_interceptor_can_replace_the_call(h2c_peer: Running) -> None:
    stub = pb2_grpc.EchoStub(grpc.intercept_channel(h2c_peer.channel(), Retry()))
    assert stub.Unary(Request(message="abort:UNAVAILABLE:flaky")).message == "retried"


class WrapStream(grpc.UnaryStreamClientInterceptor):
    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        call = continuation(details, request)

        def doubled() -> Iterator[Any]:
            for response in call:
                yield response
                yield response

        return doubled()


def test_unary_stream_interceptor_can_wrap_responses(h2c_peer: Running) -> None:
    stub = pb2_grpc.EchoStub(grpc.intercept_channel(h2c_peer.channel(), WrapStream()))
    assert [m.index for m in stub.ServerStream(Request(count=2))] == [0, 0, 1, 1]


class GrpcioStyle(real_grpc.UnaryUnaryClientInterceptor):
    """Derived from grpcio's own base class: matched by method name."""

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(_with_metadata(details, "added", "grpcio"), request)


def test_grpcio_derived_interceptor(h2c_peer: Running) -> None:
    stub = pb2_grpc.EchoStub(grpc.intercept_channel(h2c_peer.channel(), GrpcioStyle()))
    assert stub.Unary(Request(message="invocation")).message == repr([("added", "grpcio")])


class Explodes(grpc.UnaryUnaryClientInterceptor):
    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        raise LookupError("interceptor bug")


def test_interceptor_exception(h2c_peer: Running) -> None:
    stub = pb2_grpc.EchoStub(grpc.intercept_channel(h2c_peer.channel(), Explodes()))
    with pytest.raises(LookupError):
        stub.Unary(Request(message="x"))
    future = stub.Unary.future(Request(message="x"))
    assert isinstance(future.exception(), LookupError)
    with pytest.raises(LookupError):
        future.result()


def test_not_an_interceptor_is_a_type_error(h2c_peer: Running) -> None:
    with pytest.raises(TypeError):
        grpc.intercept_channel(h2c_peer.channel(), object())


def test_intercepted_channel_is_a_channel(h2c_peer: Running) -> None:
    channel = grpc.intercept_channel(h2c_peer.channel(), Observe())
    assert isinstance(channel, grpc.Channel)
    assert grpc.channel_ready_future(channel).result(timeout=10) is None
    with channel:
        pass
    with pytest.raises(ValueError, match="closed"):
        pb2_grpc.EchoStub(channel).Unary(Request())
