"""Security parts of grpc's API against grpcio: local credentials (unix sockets and loopback TCP),
insecure server credentials, certificate rotation with dynamic server credentials, TLS session
resumption, and the errors credential factories raise.

Servers listen on 127.0.0.1 or a unix socket in the test's temporary directory; certificates are
trustme's.
"""

from __future__ import annotations

import ast
import importlib
import socket
import ssl
import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import trustme

from .conftest import generic_handler, method, unary_unary

TIMEOUT = 10.0

LOCAL_AUTH = {
    "transport_security_type": [b"local"],
    "security_level": [b"TSI_PRIVACY_AND_INTEGRITY"],
}
INSECURE_AUTH = {"transport_security_type": [b"insecure"], "security_level": [b"TSI_SECURITY_NONE"]}


def _report(request: bytes, context: Any) -> bytes:
    """Answers with what the server knows of the connection: the auth context (without the
    PEM certificate) and the ``authorization`` metadata, if any."""
    auth = {
        key: values
        for key, values in sorted(context.auth_context().items())
        if key in ("transport_security_type", "security_level", "ssl_session_reused")
    }
    authorization = dict(context.invocation_metadata()).get("authorization")
    return repr((auth, authorization)).encode()


def _outcome(channel: Any) -> tuple[dict[str, list[bytes]], str | None]:
    report = channel.unary_unary(method("Report"))(b"", timeout=TIMEOUT)
    result: tuple[dict[str, list[bytes]], str | None] = ast.literal_eval(report.decode())
    return result


@contextmanager
def server(grpc: ModuleType, address: str, credentials: Any) -> Iterator[int]:
    """A sync server of ``grpc`` on ``address`` (a secure port, or insecure for None)."""
    running = grpc.server(
        futures.ThreadPoolExecutor(4),
        handlers=[
            generic_handler(
                grpc,
                {
                    "Report": unary_unary(grpc, _report),
                    "Identity": unary_unary(
                        grpc, lambda request, context: repr(context.peer_identities()).encode()
                    ),
                },
            )
        ],
    )
    if credentials is None:
        port = running.add_insecure_port(address)
    else:
        port = running.add_secure_port(address, credentials)
    running.start()
    try:
        yield port
    finally:
        running.stop(None)


@contextmanager
def channel(grpc: ModuleType, target: str, credentials: Any, **kwargs: Any) -> Iterator[Any]:
    opened = (
        grpc.insecure_channel(target, **kwargs)
        if credentials is None
        else grpc.secure_channel(target, credentials, **kwargs)
    )
    try:
        yield opened
    finally:
        opened.close()


def _unavailable(grpc: ModuleType, opened: Any) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        opened.unary_unary(method("Report"))(b"", timeout=TIMEOUT)
    assert raised.value.code() is grpc.StatusCode.UNAVAILABLE


# ---------------------------------------------------------------------- local credentials


def test_local_connection_type_is_exported(grpc: ModuleType) -> None:
    assert [kind.name for kind in grpc.LocalConnectionType] == ["UDS", "LOCAL_TCP"]
    assert grpc.local_channel_credentials() is not None
    assert isinstance(grpc.local_server_credentials(), grpc.ServerCredentials)
    assert isinstance(grpc.local_channel_credentials(), grpc.ChannelCredentials)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_local_tcp(grpc: ModuleType, host: str) -> None:
    kind = grpc.LocalConnectionType.LOCAL_TCP
    with server(grpc, "127.0.0.1:0", grpc.local_server_credentials(kind)) as port:
        with channel(grpc, f"{host}:{port}", grpc.local_channel_credentials(kind)) as opened:
            assert _outcome(opened) == (LOCAL_AUTH, None)
        # The wire is cleartext HTTP/2: an insecure channel is served too.
        with channel(grpc, f"127.0.0.1:{port}", None) as opened:
            assert _outcome(opened) == (LOCAL_AUTH, None)
        # A UDS credential cannot reach a TCP target.
        uds = grpc.local_channel_credentials(grpc.LocalConnectionType.UDS)
        with channel(grpc, f"127.0.0.1:{port}", uds) as opened:
            _unavailable(grpc, opened)


def test_local_uds(grpc: ModuleType, tmp_path: Path) -> None:
    target = f"unix:{tmp_path / 'local.sock'}"
    kind = grpc.LocalConnectionType.UDS
    with server(grpc, target, grpc.local_server_credentials(kind)):
        with channel(grpc, target, grpc.local_channel_credentials(kind)) as opened:
            assert _outcome(opened) == (LOCAL_AUTH, None)
        # A LOCAL_TCP credential refuses a unix socket target.
        tcp = grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP)
        with channel(grpc, target, tcp) as opened:
            _unavailable(grpc, opened)


async def test_local_credentials_aio(grpc: ModuleType, tmp_path: Path) -> None:
    async def report(request: bytes, context: Any) -> bytes:
        return _report(request, context)

    async def outcome(target: str, credentials: Any) -> Any:
        async with grpc.aio.secure_channel(target, credentials) as opened:
            try:
                reply = await opened.unary_unary(method("Report"))(b"", timeout=TIMEOUT)
            except grpc.aio.AioRpcError as error:
                return error.code()
            return ast.literal_eval(reply.decode())

    running = grpc.aio.server(
        handlers=[generic_handler(grpc, {"Report": unary_unary(grpc, report)})]
    )
    tcp = grpc.LocalConnectionType.LOCAL_TCP
    uds = grpc.LocalConnectionType.UDS
    port = running.add_secure_port("127.0.0.1:0", grpc.local_server_credentials(tcp))
    path = f"unix:{tmp_path / 'aio.sock'}"
    running.add_secure_port(path, grpc.local_server_credentials(uds))
    await running.start()
    try:
        results = [
            await outcome(f"127.0.0.1:{port}", grpc.local_channel_credentials(tcp)),
            await outcome(path, grpc.local_channel_credentials(uds)),
            await outcome(f"127.0.0.1:{port}", grpc.local_channel_credentials(uds)),
        ]
    finally:
        await running.stop(None)
    assert results == [(LOCAL_AUTH, None), (LOCAL_AUTH, None), grpc.StatusCode.UNAVAILABLE]


def test_local_server_closes_connections_of_the_wrong_kind(
    grpc: ModuleType, tmp_path: Path
) -> None:
    # A UDS port on TCP, a LOCAL_TCP port on a unix socket: every connection is closed.
    uds = grpc.local_server_credentials(grpc.LocalConnectionType.UDS)
    with server(grpc, "127.0.0.1:0", uds) as port:
        with channel(grpc, f"127.0.0.1:{port}", None) as opened:
            _unavailable(grpc, opened)
    target = f"unix:{tmp_path / 'tcp-only.sock'}"
    with server(grpc, target, grpc.local_server_credentials()):
        with channel(grpc, target, None) as opened:
            _unavailable(grpc, opened)


def test_call_credentials_over_local_credentials(grpc: ModuleType) -> None:
    credentials = grpc.composite_channel_credentials(
        grpc.local_channel_credentials(), grpc.access_token_call_credentials("token")
    )
    with server(grpc, "127.0.0.1:0", grpc.local_server_credentials()) as port:
        with channel(grpc, f"127.0.0.1:{port}", credentials) as opened:
            assert _outcome(opened) == (LOCAL_AUTH, "Bearer token")


def test_local_tcp_credentials_refuse_a_remote_target_before_connecting() -> None:
    """asgi_grpc only: grpcio checks the peer after connecting, which needs a server on a
    non-loopback interface; asgi_grpc refuses the address itself (nothing listens there)."""
    import asgi_grpc

    credentials = asgi_grpc.local_channel_credentials()
    with channel(asgi_grpc, "192.0.2.1:1", credentials) as opened:
        with pytest.raises(asgi_grpc.RpcError) as raised:
            opened.unary_unary(method("Report"))(b"", timeout=TIMEOUT)
    assert raised.value.code() is asgi_grpc.StatusCode.UNAVAILABLE
    assert "Endpoint is neither UDS or TCP loopback address" in raised.value.details()


# ---------------------------------------------------------------------- insecure


def test_insecure_ports_report_an_insecure_auth_context(grpc: ModuleType) -> None:
    for credentials in (None, grpc.insecure_server_credentials()):
        with server(grpc, "127.0.0.1:0", credentials) as port:
            with channel(grpc, f"127.0.0.1:{port}", None) as opened:
                assert _outcome(opened) == (INSECURE_AUTH, None)


# ---------------------------------------------------------------------- certificate rotation


def _pair(cert: trustme.LeafCert) -> tuple[bytes, bytes]:
    return cert.private_key_pem.bytes(), cert.cert_chain_pems[0].bytes()


def _served_certificate(port: int) -> bytes:
    """The certificate a new TLS connection to the port is shown (DER)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def _der(cert: trustme.LeafCert) -> bytes:
    return ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())


def test_dynamic_credentials_rotate_certificates_under_live_traffic(grpc: ModuleType) -> None:
    old_ca, new_ca = trustme.CA(), trustme.CA()
    old_cert = old_ca.issue_cert("localhost", "127.0.0.1")
    new_cert = new_ca.issue_cert("localhost", "127.0.0.1")
    lock = threading.Lock()
    pending: list[Any] = []  # the configuration the fetcher hands out next (once)
    fetched: list[int] = []

    def fetch() -> Any:
        with lock:
            fetched.append(1)
            return pending.pop() if pending else None

    credentials = grpc.dynamic_ssl_server_credentials(
        grpc.ssl_server_certificate_configuration([_pair(old_cert)]), fetch
    )
    old_trust = grpc.ssl_channel_credentials(old_ca.cert_pem.bytes())
    new_trust = grpc.ssl_channel_credentials(new_ca.cert_pem.bytes())
    with server(grpc, "127.0.0.1:0", credentials) as port:
        target = f"localhost:{port}"
        with channel(grpc, target, old_trust) as live, channel(grpc, target, new_trust) as early:
            assert _outcome(live)[0]["transport_security_type"] == [b"ssl"]
            assert fetched  # asked at the handshake
            # Before the rotation, a client trusting only the new CA cannot connect.
            _unavailable(grpc, early)
            assert _served_certificate(port) == _der(old_cert)

            # Live traffic on the existing connection while the certificate changes.
            stop = threading.Event()
            outcomes: list[str] = []

            def traffic() -> None:
                while not stop.is_set():
                    try:
                        _outcome(live)
                        outcomes.append("ok")
                    except grpc.RpcError as error:  # noqa: PERF203 - counted, not hidden
                        outcomes.append(str(error.code()))

            worker = threading.Thread(target=traffic)
            worker.start()
            try:
                with lock:
                    pending.append(grpc.ssl_server_certificate_configuration([_pair(new_cert)]))
                # New connections get the new certificate...
                assert _served_certificate(port) == _der(new_cert)
                with channel(grpc, target, new_trust) as fresh:
                    assert _outcome(fresh)[0]["transport_security_type"] == [b"ssl"]
                # ...and one trusting only the old CA is refused.
                with channel(grpc, target, old_trust) as stale:
                    _unavailable(grpc, stale)
            finally:
                stop.set()
                worker.join(TIMEOUT)
            # The connection made before the rotation kept serving throughout, and still does.
            assert outcomes
            assert set(outcomes) == {"ok"}
            assert _outcome(live)[0]["transport_security_type"] == [b"ssl"]


def test_dynamic_credentials_keep_the_certificate_when_the_fetcher_fails(
    grpc: ModuleType,
) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    answers = iter([RuntimeError("fetch failed"), 42, None])

    def fetch() -> Any:
        answer = next(answers, None)
        if isinstance(answer, Exception):
            raise answer
        return answer

    credentials = grpc.dynamic_ssl_server_credentials(
        grpc.ssl_server_certificate_configuration([_pair(cert)]), fetch
    )
    trust = grpc.ssl_channel_credentials(ca.cert_pem.bytes())
    with server(grpc, "127.0.0.1:0", credentials) as port:
        for _ in range(3):  # a new connection each time: a new handshake, a new fetch
            with channel(grpc, f"localhost:{port}", trust) as opened:
                assert _outcome(opened)[0]["transport_security_type"] == [b"ssl"]


def test_dynamic_credentials_rotate_the_client_cas_of_mutual_tls(grpc: ModuleType) -> None:
    server_ca, old_clients, new_clients = trustme.CA(), trustme.CA(), trustme.CA()
    server_pair = _pair(server_ca.issue_cert("localhost"))
    old_client = old_clients.issue_cert("old-client.example.com")
    new_client = new_clients.issue_cert("new-client.example.com")
    pending: list[Any] = []

    def fetch() -> Any:
        return pending.pop() if pending else None

    def configuration(client_ca: trustme.CA) -> Any:
        return grpc.ssl_server_certificate_configuration([server_pair], client_ca.cert_pem.bytes())

    credentials = grpc.dynamic_ssl_server_credentials(configuration(old_clients), fetch, True)

    def identity(port: int, client: trustme.LeafCert | None) -> Any:
        key, chain = _pair(client) if client is not None else (None, None)
        trust = grpc.ssl_channel_credentials(server_ca.cert_pem.bytes(), key, chain)
        with channel(grpc, f"localhost:{port}", trust) as opened:
            try:
                return opened.unary_unary(method("Identity"))(b"", timeout=TIMEOUT)
            except grpc.RpcError as error:
                return error.code()

    unavailable = grpc.StatusCode.UNAVAILABLE
    with server(grpc, "127.0.0.1:0", credentials) as port:
        before = [identity(port, client) for client in (old_client, new_client, None)]
        pending.append(configuration(new_clients))
        after = [identity(port, client) for client in (old_client, new_client, None)]
    assert before == [repr([b"old-client.example.com"]).encode(), unavailable, unavailable]
    assert after == [unavailable, repr([b"new-client.example.com"]).encode(), unavailable]


# ---------------------------------------------------------------------- session resumption


def _session_cache(grpc: ModuleType, capacity: int) -> Any:
    module = importlib.import_module(f"{grpc.__name__}.experimental.session_cache")
    return module.ssl_session_cache_lru(capacity)


def test_tls_sessions_resume_with_a_session_cache(grpc: ModuleType) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    credentials = grpc.ssl_server_credentials([_pair(cert)])
    cache = _session_cache(grpc, 4)
    options = [("grpc.ssl_session_cache", cache)]
    trust = grpc.ssl_channel_credentials(ca.cert_pem.bytes())
    reused = []
    with server(grpc, "127.0.0.1:0", credentials) as port:
        target = f"localhost:{port}"
        for trusted in (trust, trust, grpc.ssl_channel_credentials(ca.cert_pem.bytes())):
            # A new channel, so a new connection each time.
            with channel(grpc, target, trusted, options=options) as opened:
                reused.append(_outcome(opened)[0]["ssl_session_reused"])
        with channel(grpc, target, trust) as uncached:
            reused.append(_outcome(uncached)[0]["ssl_session_reused"])
    assert reused == [[b"false"], [b"true"], [b"true"], [b"false"]]


# ---------------------------------------------------------------------- factory errors


def test_credential_factories_check_their_arguments(grpc: ModuleType) -> None:
    with pytest.raises(TypeError):
        grpc.ssl_channel_credentials(root_certificates="-----BEGIN CERTIFICATE-----")
    with pytest.raises(TypeError):
        grpc.ssl_server_credentials([("key", "chain")])
    with pytest.raises(ValueError, match="At least one private key-certificate chain pair"):
        grpc.ssl_server_credentials([])
    with pytest.raises(ValueError, match="At least one private key-certificate chain pair"):
        grpc.ssl_server_certificate_configuration([])
    with pytest.raises(TypeError):
        grpc.ssl_server_certificate_configuration([("key", "chain")])
    configuration = grpc.ssl_server_certificate_configuration([(b"key", b"chain")])
    assert isinstance(configuration, grpc.ServerCertificateConfiguration)
    with pytest.raises(TypeError, match="cert_config_fetcher must be callable"):
        grpc.dynamic_ssl_server_credentials(configuration, None)
    with pytest.raises(TypeError, match="initial_cert_config"):
        grpc.dynamic_ssl_server_credentials(42, lambda: None)
    with pytest.raises(AttributeError):
        grpc.local_channel_credentials(1)
    # A key without its chain is accepted (no client certificate is sent).
    assert grpc.ssl_channel_credentials(None, b"key", None) is not None
