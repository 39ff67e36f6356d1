"""The client commands over TLS and mutual TLS, against grpcio's and asgi_grpc's servers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.cli.conftest import IMPLS, BackgroundLoop, TLSFiles, cli, running

ECHO = "asgi_grpc.test.Echo"
UNAVAILABLE = 64 + 14


@pytest.mark.parametrize("impl", IMPLS)
def test_tls(background: BackgroundLoop, tls: Any, tls_files: TLSFiles, impl: str) -> None:
    with running(background, impl, tls=tls) as server:
        trusted = ["--tls-ca", str(tls_files.ca)]
        result = cli("call", server.target, f"{ECHO}/Unary", "-d", '{"message": "tls"}', *trusted)
        assert result.status == 0, result.err
        assert json.loads(result.out) == {"message": "tls"}
        listed = cli("list", server.target, *trusted)
        assert ECHO in listed.lines()
        health = cli("health", server.target, *trusted)
        assert (health.status, health.out) == (0, "SERVING\n")
        # The name checked is --servername's, not the target's.
        named = cli("health", server.target, *trusted, "--servername", "localhost")
        assert named.status == 0, named.err
        wrong = cli("health", server.target, *trusted, "--servername", "wrong.example")
        assert wrong.status == UNAVAILABLE
        assert "not valid for 'wrong.example'" in wrong.err
        # Not trusted without the CA (the system's CAs do not know it); not h2c.
        untrusted = cli("list", server.target)
        assert untrusted.status == UNAVAILABLE
        assert "CERTIFICATE_VERIFY_FAILED" in untrusted.err
        plaintext = cli("list", server.target, "--plaintext")
        assert plaintext.status == UNAVAILABLE


@pytest.mark.parametrize("impl", IMPLS)
def test_mutual_tls(background: BackgroundLoop, tls: Any, tls_files: TLSFiles, impl: str) -> None:
    with running(background, impl, tls=tls, require_client_auth=True) as server:
        trusted = ["--tls-ca", str(tls_files.ca)]
        client_cert = [
            "--tls-cert",
            str(tls_files.client_cert),
            "--tls-key",
            str(tls_files.client_key),
        ]
        stdin = '{"message": "a"}\n{"message": "b"}\n'
        result = cli(
            "call", server.target, f"{ECHO}/BidiStream", "-d", "@", *trusted, *client_cert,
            stdin=stdin,
        )  # fmt: skip
        assert result.status == 0, result.err
        assert [json.loads(line)["message"] for line in result.lines()] == ["A", "B"]
        refused = cli("list", server.target, *trusted)
        assert refused.status == UNAVAILABLE
        assert refused.err.startswith("ERROR: UNAVAILABLE: ")


def test_tls_option_errors(tls_files: TLSFiles) -> None:
    half = cli("list", "127.0.0.1:1", "--tls-cert", str(tls_files.client_cert))
    assert half.status == 1
    assert "--tls-cert and --tls-key go together" in half.err
    mixed = cli("list", "127.0.0.1:1", "--plaintext", "--tls-ca", str(tls_files.ca))
    assert mixed.status == 1
    assert "--plaintext cannot be combined" in mixed.err
