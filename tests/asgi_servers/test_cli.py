"""``asgi-grpc serve --server uvicorn|pyvoy``: workers, TLS with client certificates, the errors
a user gets for what a server cannot do or a missing extra. (h2c and TLS themselves: every test
in this package runs its server through the CLI.)"""

from __future__ import annotations

import io
import signal
import sys
import tempfile
from pathlib import Path

import grpc
import pytest

from asgi_grpc.cli import main
from tests.cli.serving import _SERVING, start
from tests.conftest import TLS

from .serving import serve, server_params

NON_HYPERCORN = [p for p in server_params() if getattr(p, "id", "") != "hypercorn"]


def _call(target: str, credentials: grpc.ChannelCredentials | None = None) -> bytes:
    if credentials is None:
        channel = grpc.insecure_channel(target)
    else:
        options = (("grpc.ssl_target_name_override", "localhost"),)
        channel = grpc.secure_channel(target, credentials, options=options)
    with channel:
        result: bytes = channel.unary_unary("/h.H/Unary")(b"hello", timeout=10)
        return result


@pytest.mark.parametrize("server", NON_HYPERCORN)
def test_workers(server: str) -> None:
    """uvicorn: two worker processes; pyvoy: two Envoy worker threads. Calls on several
    connections are all answered."""
    with serve(server, "hardening", args=("--workers", "2")) as served:
        assert all(_call(served.target) == b"hello" for _ in range(4))
        # SIGTERM reaches uvicorn's workers (asgi_grpc's Hypercorn-worker SIGTERM handler must
        # not replace uvicorn's: they would never drain); uvicorn re-raises it once done.
        assert served.stop(timeout=20) in (0, -signal.SIGTERM), served.output()


@pytest.mark.parametrize("server", NON_HYPERCORN)
def test_mutual_tls(server: str, tls: TLS) -> None:
    with tempfile.TemporaryDirectory() as directory:
        ca = Path(directory) / "ca.pem"
        ca.write_bytes(tls.ca_pem)
        args = ("--tls-ca", str(ca), "--require-client-auth")
        with serve(server, "hardening", tls=tls, args=args) as served:
            with_cert = grpc.ssl_channel_credentials(
                root_certificates=tls.ca_pem,
                private_key=tls.client_key,
                certificate_chain=tls.client_chain,
            )
            assert _call(served.target, with_cert) == b"hello"
            without = grpc.ssl_channel_credentials(root_certificates=tls.ca_pem)
            with pytest.raises(grpc.RpcError) as caught:
                _call(served.target, without)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("server", "module"), [("uvicorn", "uvicorn"), ("uvicorn", "zttp"), ("pyvoy", "pyvoy")]
)
def test_missing_extra_is_a_clear_error(
    server: str, module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # importlib.util.find_spec -> None
    err = io.StringIO()
    status = main(["serve", "tests.asgi_servers.apps:hardening", "--server", server], stderr=err)
    assert status == 1
    assert err.getvalue() == (
        f"asgi-grpc: error: --server {server} needs {module}: pip install 'asgi_grpc[{server}]'\n"
    )


@pytest.mark.parametrize(
    ("binds", "message"),
    [
        (["unix:/tmp/x.sock"], "--server pyvoy cannot listen on unix:/tmp/x.sock: give host:port"),
        (["127.0.0.1:0", "127.0.0.1:0"], "--server pyvoy listens on one address: give one --bind"),
    ],
)
def test_pyvoy_binds(binds: list[str], message: str) -> None:
    err = io.StringIO()
    args = [arg for bind in binds for arg in ("--bind", bind)]
    status = main(
        ["serve", "tests.asgi_servers.apps:hardening", "--server", "pyvoy", *args], stderr=err
    )
    assert status == 1
    assert err.getvalue() == f"asgi-grpc: error: {message}\n"


def test_help_names_each_server(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = capsys.readouterr().out
    assert "--server {hypercorn,uvicorn,pyvoy}" in text
    for line in ("hypercorn (default):", "uvicorn: uvicorn --http zttp --http2", "pyvoy: Envoy"):
        assert line in text


def test_uvicorn_serves_a_unix_socket_next_to_tcp(tmp_path: Path) -> None:
    path = tmp_path / "grpc.sock"
    served = start(
        "tests.asgi_servers.apps:hardening",
        "--server",
        "uvicorn",
        "--bind",
        f"unix:{path}",
        "--bind",
        "127.0.0.1:0",
    )
    try:
        lines = served.read_until(_SERVING.pattern, count=2)
        assert f"asgi-grpc: serving on unix:{path}\n" in lines
        assert _call(f"unix:{path}") == b"hello"
        tcp = next(line for line in lines if "http://" in line).rsplit("http://", 1)[1].strip()
        assert _call(tcp) == b"hello"
    finally:
        served.stop()
