"""``asgi-grpc list / describe / call / health`` in-process (``main(argv)``) against grpcio's and
asgi_grpc's servers: reflection (v1, and v1alpha on grpcio), all four call patterns, metadata,
deadlines and status codes as exit statuses, JSON in and out."""

from __future__ import annotations

import base64
import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from asgi_grpc.cli import RPC_EXIT_BASE
from tests.cli.conftest import SICK, BackgroundLoop, Server, cli

NOT_SERVING, SERVING = 2, 1

ECHO = "asgi_grpc.test.Echo"
V1 = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
V1ALPHA = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"


def exit_status(code: int) -> int:
    return RPC_EXIT_BASE + code


def test_list_services(server: Server) -> None:
    result = cli("list", server.target, "--plaintext")
    assert result.status == 0, result.err
    services = result.lines()
    assert ECHO in services
    assert "grpc.health.v1.Health" in services
    assert "grpc.reflection.v1alpha.ServerReflection" in services
    assert services == sorted(services)


def test_reflection_version(server: Server) -> None:
    """v1 where the server has it (asgi_grpc); grpcio-reflection only has v1alpha: the CLI asks
    v1 first, gets UNIMPLEMENTED, and continues on v1alpha."""
    server.recorder.paths.clear()
    assert cli("list", server.target, "--plaintext").status == 0
    if server.impl == "asgi_grpc":
        assert server.recorder.paths == [V1]
    else:
        assert server.recorder.paths == [V1, V1ALPHA]


def test_list_methods(server: Server) -> None:
    # Options after the arguments, and between them.
    result = cli("list", server.target, ECHO, "--plaintext")
    assert result.status == 0, result.err
    assert result.lines() == [
        f"{ECHO}.{m}" for m in ("Unary", "ServerStream", "ClientStream", "BidiStream")
    ]


def test_describe(server: Server) -> None:
    service = cli("describe", "--plaintext", server.target, ECHO)
    assert service.status == 0, service.err
    assert service.out.splitlines()[:3] == [
        f"{ECHO} is a service:",
        "service Echo {",
        "  rpc Unary ( .asgi_grpc.test.EchoRequest ) returns ( .asgi_grpc.test.EchoResponse );",
    ]
    assert (
        "  rpc BidiStream ( stream .asgi_grpc.test.EchoRequest ) returns "
        "( stream .asgi_grpc.test.EchoResponse );" in service.lines()
    )
    message = cli("describe", "--plaintext", server.target, "asgi_grpc.test.EchoRequest")
    assert message.out == (
        "asgi_grpc.test.EchoRequest is a message:\n"
        "message EchoRequest {\n"
        "  string message = 1;\n"
        "  bytes payload = 2;\n"
        "  int32 count = 3;\n"
        "  int32 delay_ms = 4;\n"
        "}\n"
    )
    method = cli("describe", "--plaintext", server.target, f"{ECHO}.ClientStream")
    assert method.status == 0, method.err
    assert method.lines()[0] == f"{ECHO}.ClientStream is a method:"
    enum = cli("describe", "--plaintext", server.target, "grpc.health.v1.HealthCheckResponse")
    assert "  enum ServingStatus {" in enum.lines()
    assert "    NOT_SERVING = 2;" in enum.lines()


def test_describe_everything(server: Server) -> None:
    result = cli("describe", "--plaintext", server.target)
    assert result.status == 0, result.err
    assert f"{ECHO} is a service:" in result.lines()
    assert "grpc.health.v1.Health is a service:" in result.lines()


def test_unknown_symbol(server: Server) -> None:
    result = cli("describe", "--plaintext", server.target, "no.such.Thing")
    assert result.status == exit_status(5)
    assert result.err.startswith("ERROR: NOT_FOUND: ")
    method = cli("call", "--plaintext", server.target, f"{ECHO}/Nope")
    assert method.status == exit_status(5)
    assert "has no method Nope" in method.err


# ------------------------------------------------------------------------------ call


def test_unary_with_metadata(server: Server) -> None:
    request = {"message": "hi", "payload": base64.b64encode(b"\x00\xff").decode()}
    result = cli(
        "call",
        "--plaintext",
        server.target,
        f"{ECHO}/Unary",
        "-d",
        json.dumps(request),
        "-H",
        "x-echo: hello there",
        "-H",
        "x-echo-bin: " + base64.b64encode(b"\x01\x02").decode(),
        "-v",
    )
    assert result.status == 0, result.err
    assert json.loads(result.out) == request
    assert len(result.lines()) == 1
    assert "header x-echo: hello there" in result.err
    assert "trailer x-trailer: hello there" in result.err
    assert "trailer x-trailer-bin: AQI=" in result.err


def test_unary_default_request_and_json_options(server: Server) -> None:
    plain = cli("call", "--plaintext", server.target, f"{ECHO}.Unary")
    assert plain.status == 0, plain.err
    assert plain.out == "{}\n"
    full = cli("call", "--plaintext", server.target, f"{ECHO}/Unary", "--emit-defaults", "--pretty")
    assert json.loads(full.out) == {"message": "", "payload": "", "index": 0}
    assert full.out.startswith("{\n  ")
    names = cli(
        "call", "--plaintext", server.target, f"{ECHO}/ServerStream",
        "-d", '{"count": 2, "message": "m"}', "--proto-names", "--emit-defaults",
    )  # fmt: skip
    assert [json.loads(line) for line in names.lines()] == [
        {"message": "m:0", "payload": "", "index": 0},
        {"message": "m:1", "payload": "", "index": 1},
    ]


def test_server_stream_one_line_per_response(server: Server) -> None:
    result = cli(
        "call", "--plaintext", server.target, f"{ECHO}/ServerStream",
        "-d", '{"message": "s", "count": 3}',
    )  # fmt: skip
    assert result.status == 0, result.err
    assert [json.loads(line) for line in result.lines()] == [
        {"message": "s:0"},
        {"message": "s:1", "index": 1},
        {"message": "s:2", "index": 2},
    ]


def test_client_stream_from_stdin(server: Server) -> None:
    stdin = '{"message": "a"}\n{"message": "b"}\n\n{"message":\n "c"}\n'
    result = cli(
        "call", "--plaintext", server.target, f"{ECHO}/ClientStream", "-d", "@", stdin=stdin
    )
    assert result.status == 0, result.err
    assert json.loads(result.out) == {"message": "a,b,c", "index": 3}
    # -d with several values; no -d sends no message at all.
    inline = cli(
        "call", "--plaintext", server.target, f"{ECHO}/ClientStream", "-d", '{"message":"x"} {}'
    )
    assert json.loads(inline.out) == {"message": "x,", "index": 2}
    empty = cli("call", "--plaintext", server.target, f"{ECHO}/ClientStream")
    assert json.loads(empty.out) == {}


def test_bidi_from_file(server: Server, tmp_path: pytest.TempPathFactory) -> None:
    requests = tmp_path / "requests.jsonl"  # type: ignore[operator]
    requests.write_text('{"message": "one"}\n{"message": "two"}\n')
    result = cli("call", "--plaintext", server.target, f"{ECHO}/BidiStream", "-d", f"@{requests}")
    assert result.status == 0, result.err
    assert [json.loads(line) for line in result.lines()] == [
        {"message": "ONE"},
        {"message": "TWO", "index": 1},
    ]


def test_deadline_exceeded(server: Server) -> None:
    result = cli(
        "call", "--plaintext", server.target, f"{ECHO}/Unary",
        "-d", '{"delayMs": 2000}', "--timeout", "0.2",
    )  # fmt: skip
    assert result.status == exit_status(4) == 68
    assert result.err.startswith("ERROR: DEADLINE_EXCEEDED: ")
    assert result.out == ""


@pytest.mark.parametrize(
    ("method", "code", "number"),
    [("Unary", "PERMISSION_DENIED", 7), ("ServerStream", "FAILED_PRECONDITION", 9)],
)
def test_status_codes(server: Server, method: str, code: str, number: int) -> None:
    result = cli(
        "call", "--plaintext", server.target, f"{ECHO}/{method}",
        "-d", json.dumps({"message": f"fail:{code}", "count": 1}),
        "-H", "x-echo: before-the-error", "-v",
    )  # fmt: skip
    assert result.status == exit_status(number)
    assert f"ERROR: {code}: failed as asked: {code}\n" in result.err
    assert "trailer x-trailer: before-the-error" in result.err


def test_error_after_some_responses(server: Server) -> None:
    stdin = '{"message": "ok"}\n{"message": "fail:ABORTED"}\n{"message": "never"}\n'
    result = cli("call", "--plaintext", server.target, f"{ECHO}/BidiStream", "-d", "-", stdin=stdin)
    assert result.status == exit_status(10)
    assert [json.loads(line) for line in result.lines()] == [{"message": "OK"}]
    assert "ERROR: ABORTED: failed as asked: ABORTED" in result.err


@pytest.mark.parametrize("method", ["ClientStream", "BidiStream"])
def test_server_ends_before_the_requests_do(server: Server, method: str) -> None:
    """The call's status decides, not the writes that found the call over."""
    stdin = '{"message": "a"}\n{"message": "stop"}\n' + '{"message": "late"}\n' * 200
    result = cli("call", "--plaintext", server.target, f"{ECHO}/{method}", "-d", "@", stdin=stdin)
    assert result.status == 0, result.err
    expected = [{"message": "a", "index": 1}] if method == "ClientStream" else [{"message": "A"}]
    assert [json.loads(line) for line in result.lines()] == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-d", '{"message": 5}'], "request 1: "),
        (["-d", '{"nope": 1}'], "request 1: "),
        (["-d", '{"message": "a"} {"message": "b"}'], "exactly one request message, got 2"),
        (["-d", "{not json"], "invalid JSON input"),
        (["-d", "@/no/such/file.json"], "cannot read /no/such/file.json"),
        (["-H", "no-colon"], "expected 'key: value'"),
        (["-H", "x-bin: !!!"], "base64"),
    ],
)
def test_local_errors_exit_1(server: Server, args: list[str], message: str) -> None:
    result = cli("call", "--plaintext", server.target, f"{ECHO}/Unary", *args)
    assert result.status == 1
    assert result.err.startswith("asgi-grpc: error: ")
    assert message in result.err


def test_bad_request_mid_stream_cancels_the_call(server: Server) -> None:
    """The second value is not an EchoRequest: the call is cancelled, not half-closed (the
    server must not see 'a' as a complete stream and answer it)."""
    stdin = '{"message": "a"}\n{"message": 1}\n'
    result = cli(
        "call", "--plaintext", server.target, f"{ECHO}/ClientStream", "-d", "@", stdin=stdin
    )
    assert result.status == 1
    assert "request 2: " in result.err
    assert result.out == ""


def test_usage_errors_exit_2(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli("call", server.target)
    assert exited.value.code == 2
    with pytest.raises(SystemExit) as exited:
        cli("nonsense")
    assert exited.value.code == 2
    capsys.readouterr()


# ------------------------------------------------------------------------------ health


def test_health(server: Server) -> None:
    overall = cli("health", server.target, "--plaintext")
    assert (overall.status, overall.out) == (0, "SERVING\n")
    echo = cli("health", server.target, "--plaintext", ECHO)
    assert (echo.status, echo.out) == (0, "SERVING\n")
    sick = cli("health", server.target, "--plaintext", SICK)
    assert (sick.status, sick.out) == (1, "NOT_SERVING\n")
    unknown = cli("health", server.target, "--plaintext", "no.such.Service")
    assert unknown.status == exit_status(5)
    assert unknown.err.startswith("ERROR: NOT_FOUND: ")


def test_health_wait(server: Server, background: BackgroundLoop) -> None:
    """--wait watches: each status is printed until SERVING, then exit 0."""
    later = "asgi_grpc.test.Later"
    background.run(server.set_status(later, NOT_SERVING))
    watch = "/grpc.health.v1.Health/Watch"
    server.recorder.paths.clear()
    with ThreadPoolExecutor(1) as pool:
        args = ("health", server.target, "--plaintext", later, "--wait", "--timeout", "20")
        future = pool.submit(cli, *args)
        for _ in range(200):
            if watch in server.recorder.paths or future.done():
                break
            time.sleep(0.01)
        time.sleep(0.2)  # the first status is on its way
        background.run(server.set_status(later, SERVING))
        result = future.result(30)
    assert (result.status, result.lines()) == (0, ["NOT_SERVING", "SERVING"]), result.err
    # Still not serving when the deadline passes: DEADLINE_EXCEEDED.
    sick = cli("health", server.target, "--plaintext", SICK, "--wait", "--timeout", "0.3")
    assert (sick.status, sick.lines()) == (exit_status(4), ["NOT_SERVING"])
    assert sick.err.startswith("ERROR: DEADLINE_EXCEEDED: ")


# ------------------------------------------------------------------------------ failures to reach


def test_nothing_listening() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        for command in (["list"], ["health"], ["call", "-d", "{}", f"{ECHO}/Unary"]):
            result = cli(command[0], f"127.0.0.1:{port}", "--plaintext", *command[1:])
            assert result.status == exit_status(14), result.err
            assert result.err.startswith("ERROR: UNAVAILABLE: ")
