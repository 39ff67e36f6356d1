"""Fixtures shared by every test package: TLS material from a throwaway CA."""

from __future__ import annotations

import os
from dataclasses import dataclass

# The blocking API's loop is the standard asyncio loop here, as for a user without the uvloop
# extra: there a waiting caller runs the loop itself (asgi_grpc/_sync/_runner.py), and with a
# blocking server in the process it stays on its own thread, so both paths are exercised.
# uvloop (which keeps the loop on its thread) is tested in fresh interpreters
# (tests/bench/test_uvloop_hook.py and the bench's *_uvloop pairs).
os.environ.setdefault("ASGI_GRPC_UVLOOP", "0")

# Imported up front: hypothesis' pytest plugin otherwise imports it (through pytest's assertion
# rewriting, i.e. ast.parse) in the terminal summary, and CPython 3.11 can fail that parse there
# with "AST constructor recursion depth mismatch" after some runs (seen running
# tests/hypercorn/test_early_response.py alone), turning a green run into a crash.
import hypothesis  # noqa: F401
import pytest
import trustme


@dataclass(frozen=True)
class TLS:
    ca_pem: bytes
    server_key: bytes
    server_chain: bytes
    client_key: bytes
    client_chain: bytes


@pytest.fixture(scope="session")
def tls() -> TLS:
    """A CA, a server certificate for localhost / 127.0.0.1 / ::1, and a client certificate."""
    ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1", "::1")
    client = ca.issue_cert("client.example.com")
    return TLS(
        ca_pem=ca.cert_pem.bytes(),
        server_key=server.private_key_pem.bytes(),
        server_chain=server.cert_chain_pems[0].bytes(),
        client_key=client.private_key_pem.bytes(),
        client_chain=client.cert_chain_pems[0].bytes(),
    )
