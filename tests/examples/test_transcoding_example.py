"""examples/transcoding as README.md's "HTTP/JSON transcoding and OpenAPI" shows it: the server
script, and `asgi-grpc serve --http-json` on its servicer, each as a subprocess on a free port;
the README's curl session replayed with httpx, answer for answer."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from openapi_spec_validator import validate

from tests.integration.servers import ROOT, listening_socket, subprocess_env

EXAMPLE = ROOT / "examples" / "transcoding"


def readme_session() -> list[tuple[list[str], str]]:
    """The curl commands of the section's console block, each with the output shown for it."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## HTTP/JSON transcoding and OpenAPI", 1)[1]
    block = re.search(r"```console\n(.*?)```", section, re.S)
    assert block is not None
    session: list[tuple[list[str], str]] = []
    for line in block.group(1).splitlines():
        if line.startswith("$ curl"):
            session.append((shlex.split(line[2:]), ""))
        elif not line.startswith("$") and session:
            command, _ = session[-1]
            session[-1] = (command, line)
    return session


@contextlib.contextmanager
def server(*argv: str) -> Iterator[str]:
    """Run ``argv`` with ``{fd}`` replaced by a listening socket's fd; yield its base URL; stop it
    with SIGTERM at the end."""
    sock = listening_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    log = Path(tempfile.mkstemp(prefix="transcoding_example_", suffix=".log")[1])
    with log.open("wb") as out:
        process = subprocess.Popen(
            [part.replace("{fd}", str(sock.fileno())) for part in argv],
            cwd=ROOT,
            env=subprocess_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            pass_fds=[sock.fileno()],
            start_new_session=True,
        )
    sock.close()
    try:
        yield url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        log.unlink()


def curl(url: str, argv: list[str]) -> httpx.Response:
    """Just the curl this README uses: `curl [-X METHOD] URL [-d BODY]`."""
    method, body, target = "GET", None, None
    args = iter(argv[1:])
    for arg in args:
        if arg == "-X":
            method = next(args)
        elif arg == "-d":
            body = next(args)
            method = "POST" if method == "GET" else method
        else:
            target = arg
    assert target is not None
    path = target.split("/", 1)[1]
    # The connection waits in the listening socket's backlog until the server is up.
    return httpx.request(method, f"{url}/{path}", content=body, timeout=60)


@pytest.mark.parametrize(
    "argv",
    [
        (sys.executable, str(EXAMPLE / "bookstore_server.py"), "--bind", "fd://{fd}"),
    ],
    ids=["script"],
)
def test_readme_session(argv: tuple[str, ...]) -> None:
    session = readme_session()
    assert len(session) == 5
    with server(*argv) as url:
        for command, shown in session:
            response = curl(url, command)
            if shown.endswith("..."):  # the OpenAPI document, cut short in the README
                assert response.text.startswith(shown[:-3])
                validate(response.json())
                assert "Gets a book by its resource name." in response.text
            else:
                assert response.text.strip() == shown, command  # byte for byte


def test_asgi_grpc_serve_http_json() -> None:
    argv = [
        sys.executable,
        "-m",
        "asgi_grpc.cli",
        "serve",
        "bookstore_server:Bookstore",
        "--app-dir",
        str(EXAMPLE),
        "--http-json",
        "--bind",
        "fd://{fd}",
    ]
    with server(*argv) as url:
        created = httpx.post(f"{url}/v1/shelves/2/books", json={"title": "Emma"}, timeout=60)
        assert created.json()["name"] == "shelves/2/books/1"
        listed = httpx.get(f"{url}/v1/shelves/2/books", timeout=10)
        assert [book["title"] for book in listed.json()] == ["Emma"]
        validate(httpx.get(f"{url}/openapi.json", timeout=10).json())
        # gRPC on the same port still works.
        with grpc.insecure_channel(url.removeprefix("http://")) as channel:
            get = channel.unary_unary(
                "/bookstore.v1.Bookstore/GetBook",
                request_serializer=lambda name: b"\n" + bytes([len(name)]) + name.encode(),
                response_deserializer=lambda data: data,
            )
            assert b"Emma" in get("shelves/2/books/1", timeout=10)
