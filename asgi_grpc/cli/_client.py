"""The client commands: ``list``, ``describe``, ``call`` and ``health``, on asgi_grpc's aio client.

Message classes come from the descriptors the server's reflection service returns (a private
descriptor pool and ``message_factory``); JSON goes through ``json_format`` with that pool, so
``google.protobuf.Any`` fields resolve against the server's types as well.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any, TextIO, TypeVar

from google.protobuf import json_format, message, message_factory

from .. import aio
from .._core import ProtocolError, StatusCode, decode_bin
from .._credentials import ssl_channel_credentials
from .._errors import EOF
from ..client import AioRpcError, Channel
from ._describe import describe
from ._errors import CliError, RpcFailure
from ._reflection import ReflectionClient

MetadataPairs = tuple[tuple[str, str | bytes], ...]
T = TypeVar("T")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Connection:
    """How to reach the server (the options every client command shares)."""

    target: str
    plaintext: bool = False
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    authority: str | None = None
    servername: str | None = None
    metadata: MetadataPairs = ()
    timeout: float | None = None

    def channel(self) -> Channel:
        options: list[tuple[str, Any]] = [
            # A CLI shows whatever the server sends (grpcio's 4 MiB default is for services).
            ("grpc.max_receive_message_length", -1),
        ]
        if self.authority is not None:
            options.append(("grpc.default_authority", self.authority))
        if self.plaintext:
            if self.tls_ca or self.tls_cert or self.tls_key or self.servername:
                raise CliError("--plaintext cannot be combined with TLS options")
            return aio.insecure_channel(self.target, options=options)
        if (self.tls_cert is None) != (self.tls_key is None):
            raise CliError("--tls-cert and --tls-key go together (a client certificate)")
        if self.servername is not None:
            options.append(("grpc.ssl_target_name_override", self.servername))
        credentials = ssl_channel_credentials(
            root_certificates=_read(self.tls_ca),
            private_key=_read(self.tls_key),
            certificate_chain=_read(self.tls_cert),
        )
        return aio.secure_channel(self.target, credentials, options=options)


def _read(path: str | None) -> bytes | None:
    if path is None:
        return None
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror}") from None


def parse_header(text: str) -> tuple[str, str | bytes]:
    """``'key: value'`` as a metadata pair; ``-bin`` keys take base64 and send the bytes."""
    key, sep, value = text.partition(":")
    key, value = key.strip().lower(), value.strip()
    if not sep or not key:
        raise CliError(f"header {text!r}: expected 'key: value'")
    if key.endswith("-bin"):
        try:
            return key, decode_bin(value.encode("ascii", "replace"))
        except ProtocolError:
            raise CliError(f"header {key}: a -bin value must be base64") from None
    return key, value


@contextlib.asynccontextmanager
async def _session(conn: Connection) -> AsyncIterator[tuple[Channel, ReflectionClient]]:
    channel = conn.channel()
    try:
        async with ReflectionClient(
            channel, metadata=conn.metadata, timeout=conn.timeout
        ) as reflection:
            yield channel, reflection
    finally:
        await channel.close(None)


# ------------------------------------------------------------------------------ list, describe


async def list_command(conn: Connection, service: str | None, out: TextIO) -> None:
    async with _session(conn) as (_, reflection):
        if service is None:
            for name in await reflection.list_services():
                print(name, file=out)
            return
        found = await reflection.service(service)
        for method in found.methods:
            print(method.full_name, file=out)


async def describe_command(conn: Connection, symbol: str | None, out: TextIO) -> None:
    async with _session(conn) as (_, reflection):
        names = [symbol] if symbol is not None else await reflection.list_services()
        for index, name in enumerate(names):
            if index:
                print(file=out)
            print(describe(await reflection.symbol(name)), file=out)


# ------------------------------------------------------------------------------ call


@dataclasses.dataclass(frozen=True, kw_only=True)
class JsonOptions:
    emit_defaults: bool = False
    proto_names: bool = False
    pretty: bool = False


def method_path(text: str) -> tuple[str, str]:
    """``pkg.Service/Method`` or ``pkg.Service.Method`` as (service, method)."""
    text = text.strip().lstrip("/")
    if "/" in text:
        service, _, method = text.rpartition("/")
    else:
        service, _, method = text.rpartition(".")
    if not service or not method:
        raise CliError(f"method {text!r}: expected 'package.Service/Method'")
    return service, method


async def call_command(
    conn: Connection,
    method_name: str,
    data: str | None,
    json_options: JsonOptions,
    *,
    verbose: bool,
    stdin: TextIO,
    out: TextIO,
    err: TextIO,
) -> None:
    service_name, name = method_path(method_name)
    async with _session(conn) as (channel, reflection):
        service = await reflection.service(service_name)
        method = service.methods_by_name.get(name)
        if method is None:
            raise RpcFailure(
                StatusCode.NOT_FOUND, f"service {service.full_name} has no method {name}"
            )
        pool = reflection.pool
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)

        async def to_message(value: Any, index: int) -> message.Message:
            request = request_class()

            def parse() -> None:
                json_format.ParseDict(value, request, descriptor_pool=pool)

            try:
                await _with_any_types(reflection, parse)
            except json_format.ParseError as error:
                raise CliError(f"request {index + 1}: {error}") from None
            return request

        async def emit(response: message.Message) -> None:
            def convert() -> Any:
                return json_format.MessageToDict(
                    response,
                    always_print_fields_with_no_presence=json_options.emit_defaults,
                    preserving_proto_field_name=json_options.proto_names,
                    descriptor_pool=pool,
                )

            try:
                value = await _with_any_types(reflection, convert)
            except TypeError as error:
                raise CliError(f"cannot print the response: {error}") from None
            indent = 2 if json_options.pretty else None
            print(json.dumps(value, indent=indent, ensure_ascii=False), file=out, flush=True)

        values = _json_source(data, stdin, streaming=method.client_streaming)
        path = f"/{service.full_name}/{method.name}"
        kwargs: dict[str, Any] = {
            "request_serializer": _serialize,
            "response_deserializer": response_class.FromString,
        }
        call_kwargs: dict[str, Any] = {"metadata": conn.metadata, "timeout": conn.timeout}
        call: Any = None
        try:
            if not method.client_streaming:
                request = await to_message(await values.single(), 0)
                if method.server_streaming:
                    call = channel.unary_stream(path, **kwargs)(request, **call_kwargs)
                    await _print_headers(call, verbose, err)
                    async for response in call:
                        await emit(response)
                else:
                    call = channel.unary_unary(path, **kwargs)(request, **call_kwargs)
                    await _print_headers(call, verbose, err)
                    await emit(await call)
            else:
                factory = channel.stream_stream if method.server_streaming else channel.stream_unary
                call = factory(path, **kwargs)(**call_kwargs)
                pump = asyncio.ensure_future(_pump(call, values, to_message))
                try:
                    await _print_headers(call, verbose, err)
                    if method.server_streaming:
                        while (response := await call.read()) is not EOF:
                            await emit(response)
                    else:
                        await emit(await call)
                finally:
                    # The server may end the call before reading every request.
                    if not pump.done():
                        pump.cancel()
                    await asyncio.wait([pump])
                    failure = None if pump.cancelled() else pump.exception()
                    # A write that failed because the call had ended (AioRpcError, or
                    # InvalidStateError once it ended OK) tells nothing the call's own outcome
                    # does not; a bad request (CliError) or a bug does.
                    if failure is not None and not isinstance(
                        failure, (AioRpcError, asyncio.InvalidStateError)
                    ):
                        raise failure
        except AioRpcError as error:
            if verbose:
                _print_metadata("trailer", error.trailing_metadata(), err)
            raise RpcFailure(error.code(), error.details() or "") from None
        except BaseException:
            if call is not None:
                call.cancel()
            raise
        if verbose:
            _print_metadata("trailer", await call.trailing_metadata(), err)


async def _pump(
    call: Any, values: _JsonSource, to_message: Callable[[Any, int], Awaitable[Any]]
) -> None:
    """Write every request to a client-streaming call, then half-close it. A bad request cancels
    the call (and is raised), so the server never sees a partial stream end as if complete."""
    index = 0
    try:
        async for value in values:
            await call.write(await to_message(value, index))
            index += 1
    except CliError:
        call.cancel()
        raise
    await call.done_writing()


# json_format names a missing Any type only in its message (no structured field to read).
_MISSING_ANY_TYPE = re.compile(r"Can not find message descriptor by type_url: (\S+)")


async def _with_any_types(reflection: ReflectionClient, convert: Callable[[], T]) -> T:
    """``convert()``, fetching by reflection each type a ``google.protobuf.Any`` holds that the
    pool does not have yet (types the method's own files do not import), as grpcurl does."""
    fetched: set[str] = set()
    while True:
        try:
            return convert()
        except (TypeError, json_format.ParseError) as error:  # noqa: PERF203 (once per type)
            match = _MISSING_ANY_TYPE.search(str(error))
            if match is None:
                raise
            name = match.group(1).rpartition("/")[2]
            if name in fetched:
                raise
            fetched.add(name)
            try:
                await reflection.symbol(name)
            except RpcFailure:
                raise error from None


async def _print_headers(call: Any, verbose: bool, err: TextIO) -> None:
    if verbose:
        _print_metadata("header", await call.initial_metadata(), err)


def _print_metadata(kind: str, metadata: Any, err: TextIO) -> None:
    for key, value in metadata or ():
        text = base64.b64encode(value).decode() if isinstance(value, bytes) else value
        print(f"{kind} {key}: {text}", file=err, flush=True)


def _serialize(value: message.Message) -> bytes:
    return value.SerializeToString()


# ------------------------------------------------------------------------------ JSON input


class _JsonSource:
    """The request JSON values: from ``-d`` text, a file (``-d @file``) or stdin (``-d @`` or
    ``-d -``). Several values are separated by whitespace (newline-delimited JSON, or pretty
    printed objects one after the other). Stdin is read as it arrives, so a bidi call can be
    driven interactively."""

    def __init__(self, text: str | None, stdin: TextIO | None, streaming: bool) -> None:
        self._text = text
        self._stdin = stdin
        self._streaming = streaming

    async def single(self) -> Any:
        values = [value async for value in self]
        if len(values) != 1:
            raise CliError(f"this method takes exactly one request message, got {len(values)}")
        return values[0]

    def __aiter__(self) -> AsyncIterator[Any]:
        if self._stdin is not None:
            return _decode_stream(_read_lines(self._stdin))
        return _from_text(self._text)


async def _from_text(text: str | None) -> AsyncIterator[Any]:
    for value in _decode_all(text if text is not None else ""):
        yield value


def _json_source(data: str | None, stdin: TextIO, *, streaming: bool) -> _JsonSource:
    if data is None:
        # No data: one empty request for unary-request methods, none for client streams.
        return _JsonSource("" if streaming else "{}", None, streaming)
    if data in ("@", "-"):
        return _JsonSource(None, stdin, streaming)
    if data.startswith("@"):
        raw = _read(data[1:])
        assert raw is not None
        return _JsonSource(raw.decode("utf-8"), None, streaming)
    return _JsonSource(data, None, streaming)


_DECODER = json.JSONDecoder()


def _decode_all(text: str) -> Iterator[Any]:
    position, end = 0, len(text)
    while True:
        while position < end and text[position].isspace():
            position += 1
        if position == end:
            return
        try:
            value, position = _DECODER.raw_decode(text, position)
        except json.JSONDecodeError as error:
            raise CliError(f"invalid JSON input: {error}") from None
        yield value


async def _decode_stream(chunks: AsyncIterator[str]) -> AsyncIterator[Any]:
    """Values as soon as they are complete. A value that does not parse yet may be incomplete;
    it is an error only if the input ends before it does."""
    buffer = ""
    async for chunk in chunks:
        buffer += chunk
        while True:
            stripped = buffer.lstrip()
            if not stripped:
                buffer = ""
                break
            try:
                value, used = _DECODER.raw_decode(stripped)
            except json.JSONDecodeError:
                buffer = stripped
                break
            buffer = stripped[used:]
            yield value
    for value in _decode_all(buffer):
        yield value


async def _read_lines(stream: TextIO, read_ahead: int = 16) -> AsyncIterator[str]:
    """Lines of a blocking text stream, read on a daemon thread (one that never blocks exit
    while it waits for input that no longer matters), at most ``read_ahead`` lines ahead."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | BaseException | None] = asyncio.Queue()
    credit = threading.Semaphore(read_ahead)

    def reader() -> None:
        def put(item: str | BaseException | None) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        try:
            try:
                for line in stream:
                    credit.acquire()
                    put(line)
            except (OSError, ValueError) as error:  # unreadable, or not text (UnicodeError)
                put(error)
            else:
                put(None)
        except RuntimeError:
            return  # the loop is closed: the command is over and needs no more input

    threading.Thread(target=reader, name="asgi-grpc-stdin", daemon=True).start()
    while (line := await queue.get()) is not None:
        if isinstance(line, BaseException):
            raise CliError(f"cannot read stdin: {line}")
        credit.release()
        yield line


# ------------------------------------------------------------------------------ health


async def health_command(conn: Connection, service: str, out: TextIO, *, wait: bool) -> bool:
    """Print the service's serving status; True if it is SERVING.

    With ``wait``: ``Watch`` instead of ``Check``, waiting for the server to be reachable, and
    print each status until one is SERVING (or the deadline passes)."""
    from .. import health

    def show(status: int) -> bool:
        print(health.HealthCheckResponse.ServingStatus.Name(status), file=out, flush=True)
        serving: bool = status == health.SERVING
        return serving

    request = health.HealthCheckRequest(service=service)
    channel = conn.channel()
    try:
        stub = health.HealthStub(channel)
        try:
            if not wait:
                response = await stub.Check(request, metadata=conn.metadata, timeout=conn.timeout)
                return show(response.status)
            call = stub.Watch(
                request, metadata=conn.metadata, timeout=conn.timeout, wait_for_ready=True
            )
            try:
                async for response in call:
                    if show(response.status):
                        return True
            finally:
                call.cancel()
        except AioRpcError as error:
            raise RpcFailure(error.code(), error.details() or "") from None
    finally:
        await channel.close(None)
    raise RpcFailure(StatusCode.UNAVAILABLE, "the server ended the health watch")


def decode_metadata_args(headers: Sequence[str]) -> MetadataPairs:
    return tuple(parse_header(text) for text in headers)
