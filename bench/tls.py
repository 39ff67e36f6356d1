"""TLS material for the TLS workloads: a throw-away CA and a server certificate made with trustme
at run time (nothing is committed), written into a directory every process reads.

The certificate names ``localhost`` and ``127.0.0.1``; clients verify it against the CA as a real
client would, so the handshake and the record layer both cost what they cost in production.
"""

from __future__ import annotations

import ssl
from pathlib import Path

CA = "ca.pem"
CHAIN = "server.pem"
KEY = "server.key"


def make_certs(directory: Path) -> Path:
    """Write ca.pem, server.pem (certificate chain) and server.key into ``directory``."""
    import trustme

    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1", "::1")
    ca.cert_pem.write_to_path(str(directory / CA))
    cert.private_key_pem.write_to_path(str(directory / KEY))
    (directory / CHAIN).write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    return directory


def read(directory: Path) -> tuple[bytes, bytes, bytes]:
    """(CA certificate, server certificate chain, server key), PEM."""
    return (
        (directory / CA).read_bytes(),
        (directory / CHAIN).read_bytes(),
        (directory / KEY).read_bytes(),
    )


def server_context(directory: Path) -> ssl.SSLContext:
    """An h2-only server context (for grpclib, which takes an ``ssl.SSLContext``)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / CHAIN, directory / KEY)
    context.set_alpn_protocols(["h2"])
    return context


def client_context(directory: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(directory / CA))
    context.set_alpn_protocols(["h2"])
    return context
