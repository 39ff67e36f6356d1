"""Argument parsing and dispatch for ``asgi-grpc``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Coroutine, Sequence
from typing import Any, TextIO

from .. import __version__
from . import _serve, _servers
from ._client import (
    Connection,
    JsonOptions,
    call_command,
    decode_metadata_args,
    describe_command,
    health_command,
    list_command,
)
from ._errors import CliError, RpcFailure

PROG = "asgi-grpc"

_SERVE_HELP = """\
Serve a gRPC app over HTTP/2 (h2c, or TLS with --tls-cert/--tls-key) with an ASGI server:
  hypercorn (default): asgi_grpc's Hypercorn fixes and gRPC-tuned settings
     (asgi_grpc.server.grpc_config()); every bind kind, TLS, worker processes;
  uvicorn: uvicorn --http zttp --http2 (pip install 'asgi_grpc[uvicorn]'); every bind kind,
     TLS, worker processes; shutdown refuses new calls (UNAVAILABLE) without a GOAWAY notice;
  pyvoy: Envoy running the app (pip install 'asgi_grpc[pyvoy]'); one host:port --bind, TLS,
     --workers are Envoy worker threads in one process.

TARGET is module:attribute (module importable from --app-dir, default the current directory)
naming one of, checked in this order:
  1. an ASGI app: a GrpcApp, or any ASGI 3 app (e.g. Starlette mounting a GrpcApp);
  2. a servicer class: instantiated with no arguments, then as 4;
  3. a plain function: register(app) of one argument is called with a new GrpcApp to
     register servicers on (add_XServicer_to_server(Servicer(), app)); a function of no
     arguments is a factory whose result is resolved again;
  4. a servicer instance: for each base class XServicer whose generated module defines
     add_XServicer_to_server (grpcio-tools, protoc-gen-asgi_grpc, asgi_grpc.services()),
     that function registers it;
  5. a list or tuple of servicers and register functions.

--reflection and --health add grpc.reflection.v1 / v1alpha and grpc.health.v1.Health in front
of the app, listing (and marking SERVING) the services registered on the GrpcApps it contains.
Each address is printed to stderr as 'asgi-grpc: serving on <url>' once bound; SIGINT/SIGTERM
stop the server gracefully (GOAWAY, in-flight RPCs get --grace seconds)."""

_CALL_HELP = """\
Call a method, building its messages from the server's reflection service.

Requests are JSON (protobuf's JSON mapping): -d '{"name": "x"}', -d @file, or -d @ (also -d -)
for stdin. Several requests for a client-streaming method are separate JSON values, one per line
(newline-delimited JSON); stdin is sent as it is read. Without -d, a unary-request method gets
one empty message and a client-streaming one none. Each response is printed on its own line.

Exit status: 0 on OK; 64 + the status code on an RPC error (e.g. 68 DEADLINE_EXCEEDED), after
'ERROR: <CODE>: <details>' on stderr; 1 on a local error; 2 on a usage error."""

_CLIENT_EPILOG = """\
TARGET is host:port (also [v6]:port, unix:path, or a gRPC target such as dns:///host:port).
Connections use TLS with the system's CAs unless --plaintext (h2c) is given. RPC failures print
'ERROR: <CODE>: <details>' to stderr and exit with 64 + the status code."""


def build_parser() -> argparse.ArgumentParser:
    """The ``asgi-grpc`` argument parser (for documentation; :func:`main` parses)."""
    return _build()[0]


def _build() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The parser, and each command's own parser by name."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Serve and call gRPC services (asgi_grpc's command-line tool).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="serve an ASGI gRPC app or servicers (Hypercorn, uvicorn or pyvoy)",
        description=_SERVE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("target", metavar="TARGET", help="module:attribute (see above)")
    serve.add_argument(
        "--server",
        choices=_servers.SERVERS,
        default="hypercorn",
        help="the ASGI server (default hypercorn; see above for what each supports)",
    )
    serve.add_argument(
        "--bind",
        "-b",
        action="append",
        metavar="ADDRESS",
        help="host:port, [v6]:port, unix:PATH or fd://N (an inherited listening socket) to "
        "listen on; repeatable (default 127.0.0.1:50051; port 0 picks a free port)",
    )
    serve.add_argument("--tls-cert", metavar="FILE", help="server certificate chain (PEM)")
    serve.add_argument("--tls-key", metavar="FILE", help="server private key (PEM)")
    serve.add_argument(
        "--tls-ca",
        metavar="FILE",
        help="CA certificates (PEM) client certificates must chain to",
    )
    serve.add_argument(
        "--require-client-auth",
        action="store_true",
        help="with --tls-ca: reject clients without a valid certificate (mutual TLS)",
    )
    serve.add_argument(
        "--workers",
        "-w",
        type=_positive_int,
        default=1,
        metavar="N",
        help="worker processes sharing the sockets (default 1: serve in this process); "
        "with --server pyvoy, Envoy worker threads",
    )
    serve.add_argument("--reflection", action="store_true", help="serve server reflection")
    serve.add_argument("--health", action="store_true", help="serve grpc.health.v1.Health")
    serve.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let browser pages from ORIGIN call over gRPC-Web (CORS), repeatable; * for any",
    )
    serve.add_argument(
        "--http-json",
        action="store_true",
        help="transcode HTTP/JSON from google.api.http annotations; OpenAPI at /openapi.json",
    )
    serve.add_argument(
        "--grace",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds in-flight RPCs get to finish on shutdown (default 10)",
    )
    serve.add_argument(
        "--app-dir",
        default=".",
        metavar="DIR",
        help="directory put first on sys.path to import TARGET from (default .)",
    )

    def client(
        name: str, help_text: str, description: str | None = None
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help_text,
            description=description or help_text,
            epilog=_CLIENT_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.add_argument("target", metavar="TARGET", help="the server's address")
        security = sub.add_argument_group("connection")
        security.add_argument(
            "--plaintext", action="store_true", help="cleartext HTTP/2 (h2c), no TLS"
        )
        security.add_argument("--tls-ca", metavar="FILE", help="CA certificates to trust (PEM)")
        security.add_argument(
            "--tls-cert", metavar="FILE", help="client certificate chain (PEM), for mutual TLS"
        )
        security.add_argument("--tls-key", metavar="FILE", help="client private key (PEM)")
        security.add_argument(
            "--servername", metavar="NAME", help="the name the server certificate must match"
        )
        security.add_argument(
            "--authority", metavar="NAME", help="the :authority header (default: TARGET)"
        )
        security.add_argument(
            "-H",
            "--header",
            action="append",
            default=[],
            metavar="'KEY: VALUE'",
            help="request metadata, repeatable (-bin keys take base64); sent on reflection too",
        )
        security.add_argument(
            "--timeout",
            type=float,
            metavar="S",
            help="deadline of each RPC the command makes, in seconds",
        )
        return sub

    listing = client("list", "list the services, or the methods of one service")
    listing.add_argument("service", nargs="?", help="a fully qualified service name")
    describing = client("describe", "describe a service, method, message or enum as .proto source")
    describing.add_argument(
        "symbol", nargs="?", help="a fully qualified name (default: every service)"
    )
    calling = client("call", "call a method with JSON requests", _CALL_HELP)
    calling.add_argument("method", metavar="METHOD", help="package.Service/Method")
    calling.add_argument(
        "-d", "--data", metavar="JSON", help="request JSON; @FILE reads a file, @ or - stdin"
    )
    calling.add_argument(
        "-v", "--verbose", action="store_true", help="print response headers and trailers to stderr"
    )
    calling.add_argument(
        "--emit-defaults", action="store_true", help="print fields that have default values"
    )
    calling.add_argument(
        "--proto-names", action="store_true", help="print proto field names, not lowerCamelCase"
    )
    calling.add_argument("--pretty", action="store_true", help="indent the JSON output")
    checking = client(
        "health",
        "check a server's health (grpc.health.v1); exit 0 if SERVING, else 1",
        "Call grpc.health.v1.Health/Check and print the status. Exit status: 0 if SERVING, "
        "1 for any other status, 64 + the status code if the RPC fails (e.g. 69 NOT_FOUND for "
        "an unknown service, 78 UNAVAILABLE when nothing listens). With --wait: Watch, printing "
        "each status, until it is SERVING (exit 0) or --timeout passes (exit 68).",
    )
    checking.add_argument(
        "service", nargs="?", default="", help="the service to check (default: the whole server)"
    )
    checking.add_argument(
        "--wait",
        action="store_true",
        help="wait until the server is up and the service SERVING (grpc.health.v1 Watch)",
    )
    return parser, {
        "serve": serve,
        "list": listing,
        "describe": describing,
        "call": calling,
        "health": checking,
    }


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(
    argv: Sequence[str] | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run ``asgi-grpc`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    stdin = stdin if stdin is not None else sys.stdin
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    parser, commands = _build()
    args = _parse(parser, commands, list(sys.argv[1:] if argv is None else argv))
    if args.command == "serve":
        parser = commands["serve"]
    try:
        if args.command == "serve":
            return _serve_command(parser, args, err)
        return _run(_client_command(args, stdin, out, err))
    except RpcFailure as failure:
        print(f"ERROR: {failure.code.name}: {failure.details}", file=err, flush=True)
        return failure.exit_status
    except (CliError, _serve.TargetError, _serve.BindError, _servers.ServerMissing) as error:
        print(f"{PROG}: error: {error}", file=err, flush=True)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``asgi-grpc call ... | head -1``): stop quietly, as cat does.
        # Python would report the pipe again when it flushes stdout at exit; point it elsewhere.
        if out is sys.stdout:
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a process killed by it


def _parse(
    parser: argparse.ArgumentParser,
    commands: dict[str, argparse.ArgumentParser],
    argv: list[str],
) -> argparse.Namespace:
    """Options may come before, between or after a command's arguments (``list HOST
    --plaintext SERVICE``), which argparse supports only in a parser without subcommands: the
    command's own parser parses the rest."""
    subparser = commands.get(argv[0]) if argv else None
    if subparser is None:
        return parser.parse_args(argv)  # help, or a usage error
    args = subparser.parse_intermixed_args(argv[1:])
    args.command = argv[0]
    return args


def _run(coroutine: Coroutine[Any, Any, int]) -> int:
    return asyncio.run(coroutine)


async def _client_command(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    conn = Connection(
        target=args.target,
        plaintext=args.plaintext,
        tls_ca=args.tls_ca,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        authority=args.authority,
        servername=args.servername,
        metadata=decode_metadata_args(args.header),
        timeout=args.timeout,
    )
    if args.command == "list":
        await list_command(conn, args.service, out)
    elif args.command == "describe":
        await describe_command(conn, args.symbol, out)
    elif args.command == "call":
        options = JsonOptions(
            emit_defaults=args.emit_defaults, proto_names=args.proto_names, pretty=args.pretty
        )
        await call_command(
            conn,
            args.method,
            args.data,
            options,
            verbose=args.verbose,
            stdin=stdin,
            out=out,
            err=err,
        )
    elif args.command == "health":
        return 0 if await health_command(conn, args.service, out, wait=args.wait) else 1
    return 0


def _serve_command(parser: argparse.ArgumentParser, args: argparse.Namespace, err: TextIO) -> int:
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    if args.tls_ca is not None and args.tls_cert is None:
        parser.error("--tls-ca needs --tls-cert and --tls-key")
    if args.require_client_auth and args.tls_ca is None:
        parser.error("--require-client-auth needs --tls-ca")
    spec = _serve.ServeSpec(
        target=args.target,
        app_dir=args.app_dir,
        reflection=args.reflection,
        health=args.health,
        cors_origins=tuple(args.cors_origin),
        http_json=args.http_json,
        # A worker still draining when Hypercorn's supervisor sends SIGTERM exits after this.
        sigterm_backstop=args.grace + 10,
    )
    options = _serve.ServeOptions(
        binds=args.bind or ["127.0.0.1:50051"],
        workers=args.workers,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_ca=args.tls_ca,
        require_client_auth=args.require_client_auth,
        grace=args.grace,
    )

    def announce(url: str) -> None:
        print(f"{PROG}: serving on {url}", file=err, flush=True)

    return _servers.run(args.server, spec, options, announce)
