"""The blocking API's RpcError pickles with its status, details and metadata (grpcio's does not:
it holds a lock), so it crosses process boundaries: multiprocessing, Celery, logging handlers."""

from __future__ import annotations

import multiprocessing
import pickle

import pytest

import asgi_grpc as grpc

from .conftest import Running
from .servicer import pb2

Request = pb2.EchoRequest


def _failing_call(peer: Running) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        peer.stub().Unary(Request(message="trailing_abort"))
    return info.value


def test_blocking_rpc_error_pickles(h2c_peer: Running) -> None:
    error = _failing_call(h2c_peer)
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, grpc.RpcError)
    assert isinstance(copy, grpc.Call)
    assert copy.code() is grpc.StatusCode.PERMISSION_DENIED
    assert copy.details() == "denied"
    assert copy.trailing_metadata() == error.trailing_metadata()
    assert ("why", "because") in copy.trailing_metadata()
    assert copy.initial_metadata() == error.initial_metadata()
    assert copy.debug_error_string() == error.debug_error_string()
    assert copy.exception() is copy
    assert copy.cancel() is False
    assert copy.done()
    assert str(copy) == str(error)


def test_blocking_rpc_error_crosses_processes(h2c_peer: Running) -> None:
    error = _failing_call(h2c_peer)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        code, details = pool.apply(_describe, (error,), {})
    assert (code, details) == ("PERMISSION_DENIED", "denied")


def _describe(error: grpc.RpcError) -> tuple[str, str]:
    return error.code().name, error.details()
