"""Credentials: the TLS a port or a channel uses (grpc.ServerCredentials and friends)."""

from __future__ import annotations

import os
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Where a server puts a connection's auth context in the ASGI scope's per-connection state.
AUTH_CONTEXT_KEY = "asgi_grpc.auth_context"


@dataclass(frozen=True)
class ServerCredentials:
    """grpc.ServerCredentials: TLS settings for a secure port."""

    private_key_certificate_chain_pairs: tuple[tuple[bytes, bytes], ...]
    root_certificates: bytes | None = None
    require_client_auth: bool = False

    def ssl_context(self, alpn: Sequence[str] = ("h2",)) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # RFC 9113 9.2: no compression, no renegotiation, ephemeral key exchange only.
        context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
        for key, chain in self.private_key_certificate_chain_pairs:
            _load_cert_chain(context, key, chain)
        if self.root_certificates is not None:
            context.load_verify_locations(cadata=self.root_certificates.decode("ascii"))
            context.verify_mode = (
                ssl.CERT_REQUIRED if self.require_client_auth else ssl.CERT_OPTIONAL
            )
        context.set_alpn_protocols(list(alpn))
        return context


def ssl_server_credentials(
    private_key_certificate_chain_pairs: Sequence[tuple[bytes, bytes]],
    root_certificates: bytes | None = None,
    require_client_auth: bool = False,
) -> ServerCredentials:
    """grpc.ssl_server_credentials: PEM key/chain pairs, and client CA roots for mutual TLS."""
    if not private_key_certificate_chain_pairs:
        raise ValueError("At least one private key-certificate chain pair is required!")
    if require_client_auth and root_certificates is None:
        raise ValueError("Illegal to require client auth without providing root certificates!")
    return ServerCredentials(
        tuple((bytes(key), bytes(chain)) for key, chain in private_key_certificate_chain_pairs),
        root_certificates,
        require_client_auth,
    )


def _load_cert_chain(context: ssl.SSLContext, key: bytes, chain: bytes) -> None:
    """ssl can only load certificates from files: write them to a private temp file briefly."""
    fd, path = tempfile.mkstemp(suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(chain.rstrip(b"\n") + b"\n" + key)
        context.load_cert_chain(path)
    finally:
        os.unlink(path)


_RDN_NAMES = {
    "commonName": "CN",
    "countryName": "C",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "streetAddress": "street",
    "domainComponent": "DC",
    "userId": "UID",
}


def auth_context(ssl_object: Any) -> dict[str, list[bytes]]:
    """grpcio's auth context for a TLS connection (``ssl.SSLObject``), server side."""
    auth: dict[str, list[bytes]] = {
        "transport_security_type": [b"ssl"],
        "security_level": [b"TSI_PRIVACY_AND_INTEGRITY"],
        "ssl_session_reused": [b"true" if ssl_object.session_reused else b"false"],
    }
    version = ssl_object.version()
    if version:
        auth["ssl_tls_version"] = [version.encode()]
    cert = ssl_object.getpeercert()
    if not cert:
        return auth
    subject = cert.get("subject", ())
    # As grpcio (OpenSSL's RFC 2253 form): last RDN first, short attribute names.
    auth["x509_subject"] = [
        ",".join(
            f"{_RDN_NAMES.get(key, key)}={value}" for rdn in reversed(subject) for key, value in rdn
        ).encode()
    ]
    common_names = [
        value.encode()
        for rdn in cert.get("subject", ())
        for key, value in rdn
        if key == "commonName"
    ]
    sans = [
        value.encode()
        for kind, value in cert.get("subjectAltName", ())
        if kind in ("DNS", "IP Address", "URI", "email")
    ]
    # grpcio gives an empty common name for a certificate without one.
    auth["x509_common_name"] = common_names or [b""]
    if sans:
        auth["x509_subject_alternative_name"] = sans
    dns = [value.encode() for kind, value in cert.get("subjectAltName", ()) if kind == "DNS"]
    if dns:
        auth["peer_dns"] = dns
    der = ssl_object.getpeercert(binary_form=True)
    if der:
        auth["x509_pem_cert"] = [ssl.DER_cert_to_PEM_cert(der).encode()]
    return auth


class ChannelCredentials:
    """grpc.ChannelCredentials: TLS for a channel (and call credentials composed into it)."""

    def __init__(
        self,
        root_certificates: bytes | None = None,
        private_key: bytes | None = None,
        certificate_chain: bytes | None = None,
        call_credentials: tuple[CallCredentials, ...] = (),
    ) -> None:
        if (private_key is None) != (certificate_chain is None):
            raise ValueError("private_key and certificate_chain go together")
        self.root_certificates = root_certificates
        self.private_key = private_key
        self.certificate_chain = certificate_chain
        self.call_credentials = call_credentials
        self._context: ssl.SSLContext | None = None

    def _ssl_context(self) -> ssl.SSLContext:
        if self._context is None:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
            if self.root_certificates is not None:
                context.load_verify_locations(cadata=self.root_certificates.decode("ascii"))
            if self.private_key is not None and self.certificate_chain is not None:
                _load_cert_chain(context, self.private_key, self.certificate_chain)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.set_alpn_protocols(["h2"])
            self._context = context
        return self._context


def ssl_channel_credentials(
    root_certificates: bytes | None = None,
    private_key: bytes | None = None,
    certificate_chain: bytes | None = None,
) -> ChannelCredentials:
    """grpc.ssl_channel_credentials: server roots (default: the system's), client key/chain."""
    return ChannelCredentials(root_certificates, private_key, certificate_chain)


class CallCredentials:
    """grpc.CallCredentials: metadata added to every call (a plugin, possibly composed)."""

    def __init__(self, plugins: tuple[Any, ...]) -> None:
        self.plugins = plugins


class AuthMetadataContext:
    """grpc.AuthMetadataContext: what a metadata plugin is told about the call."""

    def __init__(self, service_url: str, method_name: str) -> None:
        self.service_url = service_url
        self.method_name = method_name


def metadata_call_credentials(metadata_plugin: Any, name: str | None = None) -> CallCredentials:
    """grpc.metadata_call_credentials: ``plugin(context, callback)`` supplies metadata."""
    return CallCredentials((metadata_plugin,))


class _AccessToken:
    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, context: Any, callback: Any) -> None:
        callback((("authorization", f"Bearer {self._token}"),), None)


def access_token_call_credentials(access_token: str) -> CallCredentials:
    """grpc.access_token_call_credentials: ``authorization: Bearer <token>`` on every call."""
    return CallCredentials((_AccessToken(access_token),))


def composite_call_credentials(*call_credentials: CallCredentials) -> CallCredentials:
    """grpc.composite_call_credentials: all the plugins, in order."""
    return CallCredentials(tuple(p for c in call_credentials for p in c.plugins))


def composite_channel_credentials(
    channel_credentials: ChannelCredentials, *call_credentials: CallCredentials
) -> ChannelCredentials:
    """grpc.composite_channel_credentials: TLS plus call credentials for every call."""
    return ChannelCredentials(
        channel_credentials.root_certificates,
        channel_credentials.private_key,
        channel_credentials.certificate_chain,
        channel_credentials.call_credentials + tuple(call_credentials),
    )
