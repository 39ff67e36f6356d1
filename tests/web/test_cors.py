"""GrpcWebConfig's CORS decisions, and the README's configuration snippet as written."""

from __future__ import annotations

from pathlib import Path

from asgi_grpc.server import GrpcApp, GrpcWebConfig
from asgi_grpc.server._web import preflight_headers

README = Path(__file__).parents[2] / "README.md"


def test_origins() -> None:
    assert GrpcWebConfig().allowed(b"https://a.test") is None  # CORS off by default
    listed = GrpcWebConfig(cors_origins=["https://a.test"])
    assert listed.allowed(b"https://a.test") == b"https://a.test"
    assert listed.allowed(b"https://b.test") is None
    assert listed.allowed(None) is None  # same-origin (no Origin header): nothing to add
    anyone = GrpcWebConfig(cors_origins="*")
    assert anyone.allowed(b"https://b.test") == b"*"
    assert anyone.cors_headers(b"https://b.test") == [(b"access-control-allow-origin", b"*")]
    # With credentials the browser refuses "*": the origin is echoed (and Vary set).
    credentialed = GrpcWebConfig(cors_origins="*", cors_allow_credentials=True)
    assert credentialed.cors_headers(b"https://b.test") == [
        (b"access-control-allow-origin", b"https://b.test"),
        (b"vary", b"origin"),
        (b"access-control-allow-credentials", b"true"),
    ]
    by_rule = GrpcWebConfig(cors_origins=lambda o: o.endswith(".example.com"))
    assert by_rule.allowed(b"https://app.example.com") == b"https://app.example.com"
    assert by_rule.allowed(b"https://example.org") is None


def test_allowed_headers() -> None:
    echo = preflight_headers(GrpcWebConfig(cors_origins="*"), b"https://a.test", b"x-custom")
    assert echo is not None
    assert dict(echo)[b"access-control-allow-headers"] == b"x-custom"
    fixed = preflight_headers(
        GrpcWebConfig(cors_origins="*", cors_allow_headers=["x-tenant"]), b"https://a.test", b"x"
    )
    assert fixed is not None
    allowed = dict(fixed)[b"access-control-allow-headers"].split(b", ")
    assert b"x-tenant" in allowed
    assert b"x-grpc-web" in allowed
    assert b"grpc-timeout" in allowed
    assert dict(fixed)[b"access-control-allow-methods"] == b"POST, OPTIONS"
    assert (
        preflight_headers(GrpcWebConfig(cors_origins=["https://b.test"]), b"https://a.test", b"")
        is None
    )


def test_server_options() -> None:
    config = GrpcWebConfig.from_options(
        {"asgi_grpc.cors_origins": " https://a.test,https://b.test ", "asgi_grpc.grpc_web": True}
    )
    assert config.cors_origins == ["https://a.test", "https://b.test"]
    assert GrpcWebConfig.from_options({"asgi_grpc.cors_origins": "*"}).cors_origins == "*"
    assert GrpcWebConfig.from_options({}) == GrpcWebConfig()
    assert GrpcApp(grpc_web=False).grpc_web is None
    assert GrpcApp().grpc_web == GrpcWebConfig()


def test_readme_configuration_snippet() -> None:
    section = README.read_text().split("## gRPC-Web", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    app = namespace["app"]
    assert isinstance(app, GrpcApp)
    assert app.grpc_web is not None
    assert app.grpc_web.cors_origins == ["https://app.example.com"]
