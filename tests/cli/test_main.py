"""The command's entry points and its documentation: the console script, ``python -m``,
``--help`` for each command (the serve target convention, exit statuses)."""

from __future__ import annotations

import importlib
import subprocess

import pytest
import tomllib

import asgi_grpc
import asgi_grpc.cli
from tests.cli.serving import ROOT, cli_command, subprocess_env


def test_console_script_is_main() -> None:
    with (ROOT / "pyproject.toml").open("rb") as file:
        scripts = tomllib.load(file)["project"]["scripts"]
    module, _, name = scripts["asgi-grpc"].partition(":")
    assert getattr(importlib.import_module(module), name) is asgi_grpc.cli.main
    # The plugin's entry is still there beside it.
    assert scripts["protoc-gen-asgi_grpc"] == "asgi_grpc.codegen.plugin:main"


def test_python_m_help() -> None:
    result = subprocess.run(
        cli_command("--help"),
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("usage: asgi-grpc ")
    for command in ("serve", "list", "describe", "call", "health"):
        assert f"    {command} " in result.stdout


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        asgi_grpc.cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"asgi-grpc {asgi_grpc.__version__}\n"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("serve", ["add_XServicer_to_server", "register(app)", "--workers N", "fd://N"]),
        ("call", ["newline-delimited JSON", "64 + the status code", "-d JSON"]),
        ("health", ["0 if SERVING, 1 for any other status", "69 NOT_FOUND"]),
        ("list", ["--plaintext", "-H 'KEY: VALUE'", "--timeout S"]),
    ],
)
def test_help_documents_each_command(
    command: str, expected: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        asgi_grpc.cli.main([command, "--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse rewraps lines
    assert text.startswith(f"usage: asgi-grpc {command} ")
    for phrase in expected:
        assert " ".join(phrase.split()) in text, phrase
