"""TLS contexts for servers and channels, built once here for every path that needs one.

- :func:`server_context` / :func:`client_context`: grpc's TLS settings (TLS 1.2+, ALPN ``h2``,
  RFC 9113 9.2's restrictions) from PEM bytes.
- :class:`RotatingServerContext`: certificate rotation without a restart
  (``grpc.dynamic_ssl_server_credentials``). A fetcher is asked for a new configuration at each new
  TLS handshake (from the ``sni_callback``, which OpenSSL runs on every ClientHello, with or
  without SNI); the handshake then continues on the context built for that configuration.
  Connections already up keep theirs.
- :class:`SessionCache`: TLS session resumption across a channel's connections and across
  channels (``grpc.experimental.session_cache``). OpenSSL binds a session to the context that made
  it, so the cache also keeps one client context per set of credentials; its ``wrap_bio`` hands the
  last session for the server name to each new connection.
"""

from __future__ import annotations

import collections
import logging
import os
import ssl
import tempfile
import threading
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "RotatingServerContext",
    "SessionCache",
    "client_context",
    "load_cert_chain",
    "server_context",
]

logger = logging.getLogger("asgi_grpc.tls")

KeyCertPairs = Sequence[tuple[bytes, bytes]]


def load_cert_chain(context: ssl.SSLContext, key: bytes, chain: bytes) -> None:
    """ssl can only load certificates from files: write them to a private temp file briefly."""
    fd, path = tempfile.mkstemp(suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(chain.rstrip(b"\n") + b"\n" + key)
        context.load_cert_chain(path)
    finally:
        os.unlink(path)


def server_context(
    private_key_certificate_chain_pairs: KeyCertPairs,
    root_certificates: bytes | None = None,
    require_client_auth: bool = False,
    alpn: Sequence[str] = ("h2",),
) -> ssl.SSLContext:
    """A server context: the key/chain pairs, and client CA roots for (optional) mutual TLS."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # RFC 9113 9.2: no compression, no renegotiation, ephemeral key exchange only.
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    for key, chain in private_key_certificate_chain_pairs:
        load_cert_chain(context, key, chain)
    if root_certificates is not None:
        context.load_verify_locations(cadata=root_certificates.decode("ascii"))
        context.verify_mode = ssl.CERT_REQUIRED if require_client_auth else ssl.CERT_OPTIONAL
    elif require_client_auth:
        # Possible with dynamic credentials: the client CAs may only come with a later
        # configuration. Until then no client certificate can be verified, so none is accepted.
        context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(list(alpn))
    return context


def client_context(
    root_certificates: bytes | None = None,
    private_key: bytes | None = None,
    certificate_chain: bytes | None = None,
    context_class: type[ssl.SSLContext] = ssl.SSLContext,
) -> ssl.SSLContext:
    """A channel's context: the server's roots (default: the system's), a client key/chain."""
    context = context_class(ssl.PROTOCOL_TLS_CLIENT)
    if root_certificates is not None:
        context.load_verify_locations(cadata=root_certificates.decode("ascii"))
    else:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if private_key is not None and certificate_chain is not None:
        load_cert_chain(context, private_key, certificate_chain)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["h2"])
    return context


# ---------------------------------------------------------------------- certificate rotation


class RotatingServerContext:
    """A server context whose certificates a fetcher may replace before each new handshake.

    ``build(configuration)`` makes the context for a configuration; ``fetch()`` returns a new
    configuration or None (keep the current one). A fetcher that raises, or returns something
    ``build`` cannot use, is logged and the current configuration stays (as grpcio).
    """

    def __init__(
        self,
        initial: Any,
        fetch: Callable[[], Any],
        build: Callable[[Any], ssl.SSLContext],
    ) -> None:
        self._fetch = fetch
        self._build = build
        self._current = build(initial)
        self._lock = threading.Lock()
        # The context every connection starts on: it only hands the handshake over. It carries
        # the initial certificates too, for a handshake that never reaches the callback.
        self.context = build(initial)
        self.context.sni_callback = self._on_client_hello

    def _on_client_hello(self, ssl_object: Any, server_name: str | None, _: Any) -> None:
        try:
            configuration = self._fetch()
            if configuration is not None:
                context = self._build(configuration)
                with self._lock:
                    self._current = context
        except Exception:
            logger.exception(
                "Failed fetching new server credentials, continuing to use previously-loaded "
                "credentials."
            )
        # The handshake goes on with the current certificates (and client CAs).
        ssl_object.context = self._current


# ---------------------------------------------------------------------- session resumption


class SessionCache:
    """An LRU of TLS sessions by server name, shared by the channels given it as their
    ``grpc.ssl_session_cache`` option. Thread-safe (sync channels share it across threads)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError("capacity must be >= 0")
        self._capacity = capacity
        self._lock = threading.Lock()
        # (context id, server name) -> [latest SSLObject, last resumable session]
        self._entries: collections.OrderedDict[tuple[int, str | None], list[Any]] = (
            collections.OrderedDict()
        )
        self._contexts: dict[tuple[bytes | None, ...], ssl.SSLContext] = {}

    def context(
        self,
        root_certificates: bytes | None,
        private_key: bytes | None,
        certificate_chain: bytes | None,
    ) -> ssl.SSLContext:
        """The client context for these credentials, one per cache: sessions only resume on
        the context that made them, so equal credentials share it."""
        key = (root_certificates, private_key, certificate_chain)
        with self._lock:
            context = self._contexts.get(key)
        if context is None:
            built = client_context(*key, context_class=_ResumingContext)
            assert isinstance(built, _ResumingContext)
            built.session_cache = self
            with self._lock:
                context = self._contexts.setdefault(key, built)
        return context

    def take(self, context: ssl.SSLContext, server_name: str | None) -> ssl.SSLSession | None:
        """The session to offer on a new connection to ``server_name``, if any."""
        with self._lock:
            entry = self._entries.get((id(context), server_name))
            if entry is None:
                return None
            # TLS 1.3 tickets arrive after the handshake: read the newest connection's session
            # now, when it has had time to get one; keep the previous one if it has none.
            fresh = _resumable(entry[0])
            if fresh is not None:
                entry[1] = fresh
            session = entry[1]
            self._entries.move_to_end((id(context), server_name))
            return session  # type: ignore[no-any-return]

    def put(self, context: ssl.SSLContext, server_name: str | None, ssl_object: Any) -> None:
        """Remember the newest connection to ``server_name``: its session is read later."""
        if self._capacity == 0:
            return
        key = (id(context), server_name)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self._entries[key] = [ssl_object, None]
                while len(self._entries) > self._capacity:
                    self._entries.popitem(last=False)
            else:
                fresh = _resumable(entry[0])
                if fresh is not None:
                    entry[1] = fresh
                entry[0] = ssl_object
                self._entries.move_to_end(key)


def _resumable(ssl_object: Any) -> ssl.SSLSession | None:
    """The connection's session if a new connection can resume it: TLS 1.3 only with a ticket
    (its session id is a random compatibility value), TLS 1.2 with a ticket or an id."""
    try:
        session: ssl.SSLSession | None = ssl_object.session
        version = ssl_object.version()
    except (ValueError, ssl.SSLError):
        return None
    if session is None or version is None:
        return None
    if session.has_ticket or (version != "TLSv1.3" and session.id):
        return session
    return None


class _ResumingContext(ssl.SSLContext):
    """A client context that offers the cached session on each new connection (asyncio builds
    its ``SSLObject`` with ``wrap_bio``, which takes the session)."""

    session_cache: SessionCache

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        cache = getattr(self, "session_cache", None)
        if cache is None or server_side:
            return super().wrap_bio(incoming, outgoing, server_side, server_hostname, session)
        name = server_hostname.decode() if isinstance(server_hostname, bytes) else server_hostname
        if session is None:
            session = cache.take(self, name)
        ssl_object = super().wrap_bio(incoming, outgoing, server_side, server_hostname, session)
        cache.put(self, name, ssl_object)
        return ssl_object
