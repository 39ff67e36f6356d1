"""What a server process imports: not the client (httpx), not importlib.metadata.

Each costs megabytes of RSS in every server process (see asgi_grpc._lazy and _versions);
these run in a fresh interpreter, since the test session has imported everything already.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest

from asgi_grpc._versions import installed_version


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys\nprint(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return set(out.stdout.split())


def test_a_server_does_not_import_the_client() -> None:
    loaded = _modules_after(
        "import asgi_grpc, asgi_grpc.aio\n"
        "from asgi_grpc.server import GrpcApp\n"
        "GrpcApp()\n"
        "asgi_grpc.aio.server()"
    )
    assert "asgi_grpc.server._hypercorn" in loaded
    assert not {m for m in loaded if m == "httpx" or m.startswith("asgi_grpc.client")}
    assert "importlib.metadata" not in loaded


def test_client_names_load_on_first_use() -> None:
    loaded = _modules_after(
        "import asgi_grpc as grpc\n"
        "assert callable(grpc.aio.insecure_channel) and callable(grpc.insecure_channel)\n"
        "from asgi_grpc.aio import UnaryUnaryClientInterceptor, AioRpcError\n"
        "assert 'secure_channel' in dir(grpc.aio) and 'secure_channel' in dir(grpc)"
    )
    assert {"httpx", "asgi_grpc.client._channel", "asgi_grpc._sync._channel"} <= loaded


def test_unknown_names_still_raise_attribute_error() -> None:
    import asgi_grpc

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        asgi_grpc.aio.nope  # noqa: B018


@pytest.mark.parametrize(
    ("distribution", "package"),
    [
        ("hypercorn", None),
        ("h2", None),
        ("hyperframe", None),
        ("httpx", None),
        ("protobuf", "google.protobuf"),
    ],
)
def test_installed_version_agrees_with_importlib_metadata(
    distribution: str, package: str | None
) -> None:
    __import__(package or distribution)
    assert installed_version(distribution, package) == importlib.metadata.version(distribution)


@pytest.mark.parametrize("package", ["asgi_grpc", "asgi_grpc.aio"])
def test_lazy_names_resolve_to_their_modules(package: str) -> None:
    # The lazy name tables repeat names their modules define: each must resolve, to the same
    # object the module has, and the blocking API's whole __all__ (but its `server`, which
    # the top level defines itself) must be reachable from the top level.
    import importlib

    module = importlib.import_module(package)
    lazy: dict[str, str] = module._LAZY
    for name, where in lazy.items():
        source = importlib.import_module(where, package)
        assert getattr(module, name) is getattr(source, name), name
    if package == "asgi_grpc":
        from asgi_grpc import _sync

        missing = set(_sync.__all__) - set(lazy) - set(vars(module))
        assert not missing, missing
