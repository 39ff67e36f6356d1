"""``asgi-grpc serve --server uvicorn|pyvoy``: the same app on ASGI servers other than Hypercorn.

The app is served unchanged: :class:`~asgi_grpc.server.GrpcApp` takes its portable ASGI code
paths on servers that are not Hypercorn (a trailers-only status is sent as headers, then
trailers). What each server supports (see README, "Other ASGI servers: uvicorn and pyvoy"):

- uvicorn (extra ``uvicorn``: uvicorn >= 0.54 and zttp) runs ``--http zttp --http2``: h2c and
  TLS (ALPN h2), every bind kind (host:port, unix:, fd://), worker processes (uvicorn's
  supervisor; each worker builds the app from the environment, as Hypercorn's do). Shutdown:
  zttp refuses new streams with HTTP 503 (UNAVAILABLE to gRPC clients) and sends one GOAWAY when
  the connection is idle, not HTTP/2's two-step GOAWAY.
- pyvoy (extra ``pyvoy``) runs the app inside Envoy (a child process): one host:port bind
  (port 0 picks one), h2c or TLS, ``--workers`` is Envoy's worker threads in that one process.
  Shutdown drains through Envoy's admin API: in-flight calls get ``--grace`` seconds, and each
  connection gets Envoy's two-step GOAWAY, but the notice only with its next response (Envoy's
  drain is not proactive: an idle connection hears nothing before Envoy exits).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import math
import os
import signal
import ssl
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..server._types import (
    TRAILERS_ONLY_EXTENSION,
    ASGIApp,
    ASGIReceive,
    ASGISend,
    Message,
    Scope,
)
from . import _serve

SERVERS = ("hypercorn", "uvicorn", "pyvoy")

PYVOY_APP = "asgi_grpc.cli._pyvoy_app:app"
"""What Envoy's embedded Python imports: the app built from :data:`_serve.ENV`."""

# Seconds Envoy waits between its first GOAWAY (a notice: last stream 2^31-1) and the final one
# (the last stream it will serve). Envoy's default is 5 s; a notice needs only a round trip.
PYVOY_DRAIN_NOTICE = 1.0

# Envoy's count of requests in flight on pyvoy's listeners (pyvoy's stat prefix is ingress_http;
# the admin listener's own requests count under http.admin).
_ACTIVE = r"http\.ingress_http\.downstream_rq_active"


class ServerMissing(Exception):
    """The ASGI server asked for is not installed (message says which extra to install)."""


def require(server: str) -> None:
    """Import what ``server`` needs, or raise :class:`ServerMissing` naming the extra."""
    modules = {"uvicorn": ("uvicorn", "zttp"), "pyvoy": ("pyvoy",)}.get(server, ())
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise ServerMissing(
            f"--server {server} needs {', '.join(missing)}: pip install 'asgi_grpc[{server}]'"
        )


@contextlib.contextmanager
def _spec_in_env(spec: _serve.ServeSpec) -> Iterator[None]:
    """The serve settings in the environment, for workers that build the app themselves."""
    previous = os.environ.get(_serve.ENV)
    os.environ[_serve.ENV] = spec.to_env()
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(_serve.ENV, None)
        else:
            os.environ[_serve.ENV] = previous


# ------------------------------------------------------------------------------ uvicorn


def run_uvicorn(
    spec: _serve.ServeSpec, options: _serve.ServeOptions, announce: Callable[[str], None] | None
) -> int:
    """Serve with uvicorn's HTTP/2 (zttp) until SIGINT/SIGTERM; returns the exit status."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    app = _serve.build_app(spec)  # fail early, before anything is bound
    secure = options.tls_cert is not None
    sockets = _serve.bind_sockets(options.binds)
    if announce is not None:
        for sock in sockets:
            announce(_serve.describe_socket(sock, "https" if secure else "http"))
    settings: dict[str, Any] = {
        "http": "zttp",
        "http2": True,
        "lifespan": "auto",
        "access_log": False,
        "log_level": "warning",
        "server_header": False,
        "date_header": False,
        # gRPC channels keep idle connections open (as grpc_config() does for Hypercorn).
        "timeout_keep_alive": 300,
        "timeout_graceful_shutdown": max(1, math.ceil(options.grace)),
        "loop": "uvloop" if _serve.use_uvloop() else "asyncio",
    }
    if secure:
        settings.update(ssl_certfile=options.tls_cert, ssl_keyfile=options.tls_key)
        if options.tls_ca is not None:
            settings["ssl_ca_certs"] = options.tls_ca
            settings["ssl_cert_reqs"] = (
                ssl.CERT_REQUIRED if options.require_client_auth else ssl.CERT_OPTIONAL
            )
    try:
        if options.workers == 1:
            config = uvicorn.Config(app, **settings)
            uvicorn.Server(config).run(sockets=sockets)
            return 0
        # Worker processes import the app by name and build it from the environment.
        with _spec_in_env(spec):
            config = uvicorn.Config(
                "asgi_grpc.cli._serve:load_app", factory=True, workers=options.workers, **settings
            )
            Multiprocess(config, sockets=sockets).run()
        return 0
    finally:
        for sock in sockets:
            sock.close()


# ------------------------------------------------------------------------------ pyvoy


def run_pyvoy(
    spec: _serve.ServeSpec, options: _serve.ServeOptions, announce: Callable[[str], None] | None
) -> int:
    """Serve inside Envoy (pyvoy) until SIGINT/SIGTERM; returns the exit status."""
    if len(options.binds) != 1:
        raise _serve.BindError("--server pyvoy listens on one address: give one --bind")
    host, port = _host_port(options.binds[0])
    _serve.build_app(spec)  # fail early, with a clear message, before Envoy starts
    with _spec_in_env(spec):
        return asyncio.run(_pyvoy_main(host, port, options, announce))


class PyvoyAdapter:
    """What ``asgi-grpc serve --server pyvoy`` puts around the app (pyvoy 1.3):

    - trailers-only responses: pyvoy sends a response whose headers carry the status and whose
      body is empty and final as one HEADERS frame with END_STREAM, gRPC's trailers-only form,
      which ASGI trailers cannot express. The adapter offers asgi_grpc's trailers-only extension
      and turns trailers sent before any ``http.response.start`` into exactly that response.
    - ``receive()`` shielded: pyvoy completes a ``receive()`` future even after the app cancelled
      its await, and the event loop logs ``InvalidStateError`` with a traceback each time;
      asgi_grpc cancels a call's disconnect watcher (a pending ``receive()``) whenever a call
      ends. The shield leaves pyvoy's future alone; pyvoy completes it when the stream ends.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope["extensions"] = {**(scope.get("extensions") or {}), TRAILERS_ONLY_EXTENSION: {}}
        started = False

        async def adapted_send(message: Message) -> None:
            nonlocal started
            if not started:
                started = True
                if message["type"] == "http.response.trailers":
                    headers = message["headers"]
                    await send({"type": "http.response.start", "status": 200, "headers": headers})
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    return
            await send(message)

        async def shielded_receive() -> Message:
            return await asyncio.shield(receive())

        await self.app(scope, shielded_receive, adapted_send)


def _host_port(address: str) -> tuple[str, int]:
    if address.startswith(("unix:", "fd://")):
        raise _serve.BindError(f"--server pyvoy cannot listen on {address}: give host:port")
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise _serve.BindError(f"cannot listen on {address}: expected host:port")
    return host.strip("[]") or "0.0.0.0", int(port)


def _pyvoy_server(host: str, port: int, options: _serve.ServeOptions) -> Any:
    from pyvoy import PyvoyServer

    class GrpcPyvoyServer(PyvoyServer):
        def get_envoy_config(self) -> dict[str, Any]:
            config: dict[str, Any] = super().get_envoy_config()
            for listener in config["static_resources"]["listeners"]:
                for chain in listener.get("filter_chains", ()):
                    for network_filter in chain.get("filters", ()):
                        typed = network_filter.get("typed_config", {})
                        if typed.get("@type", "").endswith("HttpConnectionManager"):
                            typed["drain_timeout"] = f"{PYVOY_DRAIN_NOTICE}s"
            return config

    tls: dict[str, Any] = {}
    if options.tls_cert is not None:
        tls = {
            "tls_cert": Path(options.tls_cert),
            "tls_key": Path(options.tls_key or ""),
            "tls_enable_http3": False,
            "tls_require_client_certificate": options.require_client_auth,
        }
        if options.tls_ca is not None:
            tls["tls_ca_cert"] = Path(options.tls_ca)
    return GrpcPyvoyServer(
        PYVOY_APP,
        address=host,
        port=port,
        worker_threads=options.workers,
        stdout=None,
        stderr=None,
        log_level="error",
        # Envoy drains every connection at once on shutdown (not spread over the drain time).
        additional_envoy_args=[
            "--drain-strategy",
            "immediate",
            "--drain-time-s",
            str(max(1, math.ceil(options.grace))),
        ],
        **tls,
    )


async def _pyvoy_main(
    host: str, port: int, options: _serve.ServeOptions, announce: Callable[[str], None] | None
) -> int:
    from pyvoy import StartupError

    server = _pyvoy_server(host, port, options)
    try:
        await server.start()
    except StartupError:
        raise _serve.BindError(
            f"pyvoy (Envoy) could not start on {host}:{port}; see its log above"
        ) from None
    try:
        if announce is not None:
            scheme = "https" if options.tls_cert is not None else "http"
            shown = f"[{server.listener_address}]" if ":" in server.listener_address else None
            announce(f"{scheme}://{shown or server.listener_address}:{server.listener_port}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        waiting = asyncio.ensure_future(server.wait())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if waiting.done():
            status: int = waiting.result() or 0
            return status
        await asyncio.to_thread(_drain, server, options.grace)
        waiting.cancel()
        return 0
    finally:
        await server.stop()


def _drain(server: Any, grace: float) -> None:
    """Envoy's graceful drain: GOAWAY on every connection, listeners closed, then wait (at most
    ``grace`` s) for the requests in flight. pyvoy has no drain call of its own; Envoy's admin
    API (whose address pyvoy keeps) has one. Not ``inboundonly``: pyvoy's listeners name no
    traffic direction, and that drain would skip them."""
    admin = getattr(server, "_admin_address", None)
    if not admin:
        return
    try:
        urllib.request.urlopen(
            urllib.request.Request(f"http://{admin}/drain_listeners?graceful", method="POST"),
            timeout=5,
        ).close()
    except OSError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if _active_requests(admin) == 0:
            # Envoy sends its GOAWAY notice with a connection's next response, and the final
            # GOAWAY PYVOY_DRAIN_NOTICE s later: let that go out before Envoy is stopped.
            time.sleep(max(0.0, min(PYVOY_DRAIN_NOTICE + 0.25, deadline - time.monotonic())))
            return
        time.sleep(0.05)


def _active_requests(admin: str) -> int | None:
    try:
        with urllib.request.urlopen(
            f"http://{admin}/stats?format=json&filter=^{_ACTIVE}$", timeout=5
        ) as response:
            stats = json.loads(response.read())["stats"]
    except (OSError, ValueError, KeyError):
        return None
    return sum(int(s.get("value", 0)) for s in stats if "value" in s)


def run(
    server: str,
    spec: _serve.ServeSpec,
    options: _serve.ServeOptions,
    announce: Callable[[str], None] | None = None,
) -> int:
    """Serve with ``server`` (one of :data:`SERVERS`)."""
    require(server)
    if server == "uvicorn":
        return run_uvicorn(spec, options, announce)
    if server == "pyvoy":
        return run_pyvoy(spec, options, announce)
    return _serve.run(spec, options, announce)
