"""Credentials: how a port or a channel is secured (grpc.ServerCredentials and friends).

Server credentials turn into a :class:`PortSecurity` per port: its TLS context (None for
cleartext) and ``admit(...)``, which gives each accepted connection its auth context (the
requests' ``scope["state"]``) or refuses it (local credentials and a remote peer). TLS contexts
themselves are built in :mod:`._tls`.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import enum
import ipaddress
import socket
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import _tls

# Where a server puts a connection's auth context in the ASGI scope's per-connection state.
AUTH_CONTEXT_KEY = "asgi_grpc.auth_context"


class LocalConnectionType(enum.Enum):
    """grpc.LocalConnectionType: what a local credential accepts."""

    UDS = 0  # unix domain sockets
    LOCAL_TCP = 1  # TCP on a loopback address


# Auth contexts as grpcio's servers report them.
_INSECURE_AUTH = {
    "transport_security_type": [b"insecure"],
    "security_level": [b"TSI_SECURITY_NONE"],
}
_LOCAL_AUTH = {
    "transport_security_type": [b"local"],
    "security_level": [b"TSI_PRIVACY_AND_INTEGRITY"],
}
_NOT_LOCAL = "Endpoint is neither UDS or TCP loopback address."


# ---------------------------------------------------------------------- server ports


class PortSecurity:
    """How a server port secures its connections: the TLS context (None: cleartext), and what
    each accepted connection gets as its requests' ``scope["state"]`` (its auth context)."""

    ssl_context: ssl.SSLContext | None = None

    def admit(self, extra: Callable[[str], Any]) -> dict[str, Any] | None:
        """The new connection's state, or None to close it (a local port, a remote peer).

        ``extra`` is the transport's ``get_extra_info``."""
        return {AUTH_CONTEXT_KEY: copy.deepcopy(_INSECURE_AUTH)}


INSECURE_PORT = PortSecurity()


class _TLSPort(PortSecurity):
    def __init__(self, ssl_context: ssl.SSLContext) -> None:
        self.ssl_context = ssl_context

    def admit(self, extra: Callable[[str], Any]) -> dict[str, Any] | None:
        ssl_object = extra("ssl_object")
        return None if ssl_object is None else {AUTH_CONTEXT_KEY: auth_context(ssl_object)}


class _LocalPort(PortSecurity):
    def __init__(self, kind: LocalConnectionType) -> None:
        self._kind = kind

    def admit(self, extra: Callable[[str], Any]) -> dict[str, Any] | None:
        # As grpcio: a connection that is not local (or not of the port's kind) is closed.
        family = getattr(extra("socket"), "family", None)
        if self._kind is LocalConnectionType.UDS:
            local = family == getattr(socket, "AF_UNIX", object())
        else:
            peer = extra("peername")
            local = family in (socket.AF_INET, socket.AF_INET6) and _is_loopback(str(peer[0]))
        return {AUTH_CONTEXT_KEY: copy.deepcopy(_LOCAL_AUTH)} if local else None


def _is_loopback(host: str) -> bool:
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)  # 127.0.0.1 seen on a dual-stack socket
    return bool((mapped or ip).is_loopback)


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


# ---------------------------------------------------------------------- server credentials


class ServerCredentials:
    """grpc.ServerCredentials: how ``add_secure_port`` secures a port."""

    def _port_security(self) -> PortSecurity:
        raise NotImplementedError


@dataclass(frozen=True)
class SslServerCredentials(ServerCredentials):
    """``ssl_server_credentials(...)``: TLS with fixed certificates."""

    private_key_certificate_chain_pairs: tuple[tuple[bytes, bytes], ...]
    root_certificates: bytes | None = None
    require_client_auth: bool = False

    def ssl_context(self, alpn: Sequence[str] = ("h2",)) -> ssl.SSLContext:
        return _tls.server_context(
            self.private_key_certificate_chain_pairs,
            self.root_certificates,
            self.require_client_auth,
            alpn,
        )

    def _port_security(self) -> PortSecurity:
        return _TLSPort(self.ssl_context())


class _InsecureServerCredentials(ServerCredentials):
    def _port_security(self) -> PortSecurity:
        return INSECURE_PORT


class _LocalServerCredentials(ServerCredentials):
    def __init__(self, kind: LocalConnectionType) -> None:
        self.kind = kind

    def _port_security(self) -> PortSecurity:
        return _LocalPort(self.kind)


def _bytes(value: Any, name: str) -> bytes:
    if not isinstance(value, bytes):
        raise TypeError(
            f"Argument {name!r} has incorrect type (expected bytes, got {type(value).__name__})"
        )
    return value


def _roots(value: Any) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):  # grpcio's server side takes text roots
        return value.encode("ascii")
    raise TypeError(f"expected certificate to be bytes, got {type(value)}")


def _pairs(pairs: Sequence[tuple[bytes, bytes]]) -> tuple[tuple[bytes, bytes], ...]:
    if not pairs:
        raise ValueError("At least one private key-certificate chain pair is required!")
    return tuple(
        (_bytes(key, "private_key"), _bytes(chain, "certificate_chain")) for key, chain in pairs
    )


def ssl_server_credentials(
    private_key_certificate_chain_pairs: Sequence[tuple[bytes, bytes]],
    root_certificates: bytes | None = None,
    require_client_auth: bool = False,
) -> ServerCredentials:
    """grpc.ssl_server_credentials: PEM key/chain pairs, and client CA roots for mutual TLS."""
    pairs = _pairs(private_key_certificate_chain_pairs)
    if require_client_auth and root_certificates is None:
        raise ValueError("Illegal to require client auth without providing root certificates!")
    return SslServerCredentials(pairs, _roots(root_certificates), require_client_auth)


def insecure_server_credentials() -> ServerCredentials:
    """grpc.insecure_server_credentials: ``add_secure_port`` with these serves cleartext."""
    return _InsecureServerCredentials()


def local_server_credentials(
    local_connect_type: LocalConnectionType = LocalConnectionType.LOCAL_TCP,
) -> ServerCredentials:
    """grpc.local_server_credentials: cleartext, for local peers only: unix sockets (``UDS``)
    or loopback TCP (``LOCAL_TCP``); other connections to the port are closed."""
    return _LocalServerCredentials(LocalConnectionType(local_connect_type.value))


class ServerCertificateConfiguration:
    """grpc.ServerCertificateConfiguration: what a dynamic credential's fetcher returns."""

    def __init__(
        self, pairs: tuple[tuple[bytes, bytes], ...], root_certificates: bytes | None
    ) -> None:
        self.private_key_certificate_chain_pairs = pairs
        self.root_certificates = root_certificates


def ssl_server_certificate_configuration(
    private_key_certificate_chain_pairs: Sequence[tuple[bytes, bytes]],
    root_certificates: bytes | None = None,
) -> ServerCertificateConfiguration:
    """grpc.ssl_server_certificate_configuration: key/chain pairs and client CA roots."""
    return ServerCertificateConfiguration(
        _pairs(private_key_certificate_chain_pairs), _roots(root_certificates)
    )


CertificateFetcher = Callable[[], "ServerCertificateConfiguration | None"]


class _DynamicServerCredentials(ServerCredentials):
    def __init__(
        self,
        initial: ServerCertificateConfiguration,
        fetcher: CertificateFetcher,
        require_client_authentication: bool,
    ) -> None:
        self.initial = initial
        self.fetcher = fetcher
        self.require_client_authentication = require_client_authentication

    def _build(self, configuration: Any) -> ssl.SSLContext:
        if not isinstance(configuration, ServerCertificateConfiguration):
            raise TypeError(
                f"the certificate configuration fetcher returned {configuration!r}, not a "
                "grpc.ServerCertificateConfiguration or None"
            )
        return _tls.server_context(
            configuration.private_key_certificate_chain_pairs,
            configuration.root_certificates,
            self.require_client_authentication,
        )

    def _port_security(self) -> PortSecurity:
        # One rotation per port: each port asks the fetcher at its own handshakes.
        rotating = _tls.RotatingServerContext(self.initial, self.fetcher, self._build)
        return _TLSPort(rotating.context)


def dynamic_ssl_server_credentials(
    initial_certificate_configuration: ServerCertificateConfiguration,
    certificate_configuration_fetcher: CertificateFetcher,
    require_client_authentication: bool = False,
) -> ServerCredentials:
    """grpc.dynamic_ssl_server_credentials: TLS whose certificates change without a restart.

    ``certificate_configuration_fetcher()`` is called before each new connection's handshake
    and returns a new configuration, or None to keep the current one; connections already up
    keep theirs. One that raises is logged, and the current configuration stays."""
    if not isinstance(initial_certificate_configuration, ServerCertificateConfiguration):
        raise TypeError("initial_cert_config must be a grpc.ServerCertificateConfiguration")
    if not callable(certificate_configuration_fetcher):
        raise TypeError("cert_config_fetcher must be callable")
    return _DynamicServerCredentials(
        initial_certificate_configuration,
        certificate_configuration_fetcher,
        require_client_authentication,
    )


# ---------------------------------------------------------------------- channel credentials


class ChannelCredentials:
    """grpc.ChannelCredentials: TLS for a channel (and call credentials composed into it)."""

    def __init__(
        self,
        root_certificates: bytes | None = None,
        private_key: bytes | None = None,
        certificate_chain: bytes | None = None,
        call_credentials: tuple[CallCredentials, ...] = (),
    ) -> None:
        self.root_certificates = root_certificates
        self.private_key = private_key
        self.certificate_chain = certificate_chain
        self.call_credentials = call_credentials
        self._context: ssl.SSLContext | None = None

    def _ssl_context(self, options: Mapping[str, Any] | None = None) -> ssl.SSLContext | None:
        """The channel's TLS context (None: cleartext). With a ``grpc.ssl_session_cache``
        option, the cache's context for these credentials, so that sessions resume across
        connections and channels."""
        cache = options.get("grpc.ssl_session_cache") if options else None
        if cache is not None:
            if not isinstance(cache, _tls.SessionCache):
                raise TypeError(
                    "the grpc.ssl_session_cache option takes "
                    "grpc.experimental.session_cache.ssl_session_cache_lru(capacity)"
                )
            return cache.context(self.root_certificates, self.private_key, self.certificate_chain)
        if self._context is None:
            self._context = _tls.client_context(
                self.root_certificates, self.private_key, self.certificate_chain
            )
        return self._context


class _InsecureChannelCredentials(ChannelCredentials):
    """``grpc.experimental.insecure_channel_credentials()``: cleartext through ``secure_channel``
    (the fallback of xds_channel_credentials, as in grpcio)."""

    _cleartext = True

    def _ssl_context(self, options: Mapping[str, Any] | None = None) -> ssl.SSLContext | None:
        return None


INSECURE_CHANNEL_CREDENTIALS = _InsecureChannelCredentials()


class _LocalChannelCredentials(ChannelCredentials):
    """``local_channel_credentials(kind)``: cleartext, to a local peer only."""

    def __init__(self, kind: LocalConnectionType) -> None:
        super().__init__()
        self.kind = kind
        self._checked: dict[str, str | None] = {}

    def _ssl_context(self, options: Mapping[str, Any] | None = None) -> ssl.SSLContext | None:
        return None

    async def _refusal(self, target: Any) -> str | None:
        """Why calls to ``target`` fail UNAVAILABLE (it is not local), else None."""
        addresses = target.addresses
        if self.kind is LocalConnectionType.UDS:
            # grpcio finds no address a UDS credential can use in a TCP target.
            if any(not hasattr(address, "path") for address in addresses):
                return "empty address list"
            return None
        for address in addresses:
            text = str(address)
            if text not in self._checked:
                self._checked[text] = await _local_tcp_refusal(address)
            refused = self._checked[text]
            if refused is not None:
                return refused
        return None


async def _local_tcp_refusal(address: Any) -> str | None:
    # grpcio's words for it, with the address in its notation.
    if hasattr(address, "path"):
        where = str(address)
    else:
        where = f"ipv6:{address}" if ":" in address.host else f"ipv4:{address}"
    refused = f"failed to connect to all addresses; last error: UNKNOWN: {where}: {_NOT_LOCAL}"
    if hasattr(address, "path"):
        return refused
    host = address.host
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        # A name: every address it resolves to must be a loopback one.
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, address.port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            return f"failed to connect to all addresses; last error: UNAVAILABLE: {exc}"
        hosts = [str(info[4][0]) for info in infos]
    else:
        hosts = [host]
    if hosts and all(_is_loopback(found) for found in hosts):
        return None
    return refused


def ssl_channel_credentials(
    root_certificates: bytes | None = None,
    private_key: bytes | None = None,
    certificate_chain: bytes | None = None,
) -> ChannelCredentials:
    """grpc.ssl_channel_credentials: server roots (default: the system's), client key/chain.

    As grpcio, a key without its chain (or a chain without its key) sends no certificate."""
    if root_certificates is not None and not isinstance(root_certificates, bytes):
        raise TypeError(f"expected certificate to be bytes, got {type(root_certificates)}")
    if private_key is None or certificate_chain is None:
        private_key = certificate_chain = None
    else:
        private_key = _bytes(private_key, "private_key")
        certificate_chain = _bytes(certificate_chain, "certificate_chain")
    return ChannelCredentials(root_certificates, private_key, certificate_chain)


def local_channel_credentials(
    local_connect_type: LocalConnectionType = LocalConnectionType.LOCAL_TCP,
) -> ChannelCredentials:
    """grpc.local_channel_credentials: cleartext to a local server only, over a unix socket
    (``UDS``) or loopback TCP (``LOCAL_TCP``); calls to other targets fail UNAVAILABLE. Call
    credentials may be used with it, as with TLS."""
    return _LocalChannelCredentials(LocalConnectionType(local_connect_type.value))


# ---------------------------------------------------------------------- call credentials


class CallCredentials:
    """grpc.CallCredentials: metadata added to every call (a plugin, possibly composed)."""

    def __init__(self, plugins: tuple[Any, ...]) -> None:
        self.plugins = plugins


class AuthMetadataContext:
    """grpc.AuthMetadataContext: what a metadata plugin is told about the call."""

    def __init__(self, service_url: str, method_name: str) -> None:
        self.service_url = service_url
        self.method_name = method_name


class _ContextPlugin:
    """A user's metadata plugin, run in (a copy of) the context its credentials were made in.

    The plugin runs on a worker thread, which has no context of its own; grpcio captures the
    context when ``metadata_call_credentials`` is called and runs each invocation in a copy of
    it, so ContextVars set before the credentials were made are what the plugin sees, and what
    the plugin sets does not leak from one call to the next.
    """

    __slots__ = ("_context", "_plugin")

    def __init__(self, plugin: Any) -> None:
        self._plugin = plugin
        self._context = contextvars.copy_context()

    def __call__(self, context: Any, callback: Any) -> None:
        self._context.copy().run(self._plugin, context, callback)


def metadata_call_credentials(metadata_plugin: Any, name: str | None = None) -> CallCredentials:
    """grpc.metadata_call_credentials: ``plugin(context, callback)`` supplies metadata."""
    return CallCredentials((_ContextPlugin(metadata_plugin),))


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
    """grpc.composite_channel_credentials: the channel's security plus call credentials."""
    composite = copy.copy(channel_credentials)
    composite.call_credentials = channel_credentials.call_credentials + tuple(call_credentials)
    return composite


# ---------------------------------------------------------------------- xDS, Compute Engine, ALTS
# asgi_grpc has no xDS control plane and no ALTS handshaker; these give what grpcio gives where
# neither is available (README, "What differs from grpcio").


def xds_channel_credentials(
    fallback_credentials: ChannelCredentials | None = None,
) -> ChannelCredentials:
    """grpc.xds_channel_credentials: the fallback credentials (default: TLS with the system's
    roots). grpcio uses the fallback for every target not resolved through xDS; asgi_grpc
    resolves none through xDS (a channel to an ``xds:`` target fails its calls UNAVAILABLE)."""
    return ssl_channel_credentials() if fallback_credentials is None else fallback_credentials


def xds_server_credentials(fallback_credentials: ServerCredentials) -> ServerCredentials:
    """grpc.xds_server_credentials: the fallback credentials, which grpcio's server uses when
    no xDS control plane configures the port; asgi_grpc has none."""
    return fallback_credentials


def compute_engine_channel_credentials(call_credentials: CallCredentials) -> ChannelCredentials:
    """grpc.compute_engine_channel_credentials: TLS with the system's roots plus
    ``call_credentials`` (meant to be the VM's service account), as grpcio's Google default
    credentials are for targets that are not backends of a grpclb/xDS balancer; asgi_grpc has
    no ALTS, which grpcio uses only for those backends."""
    return composite_channel_credentials(ssl_channel_credentials(), call_credentials)


_NO_ALTS = (
    "ALTS is not supported by asgi_grpc: it needs Google Cloud's ALTS handshaker service; "
    "use ssl_channel_credentials/ssl_server_credentials"
)


def alts_channel_credentials(service_accounts: Sequence[str] | None = None) -> ChannelCredentials:
    """grpc.alts_channel_credentials: not supported (raises NotImplementedError)."""
    raise NotImplementedError(_NO_ALTS)


def alts_server_credentials() -> ServerCredentials:
    """grpc.alts_server_credentials: not supported (raises NotImplementedError)."""
    raise NotImplementedError(_NO_ALTS)
