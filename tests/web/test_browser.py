"""gRPC-Web in a real browser: headless Chromium (the system package, driven by Playwright)
runs a page with real gRPC-Web clients from npm (@connectrpc/connect-web, binary; Google's
grpc-web, text) against an asgi_grpc server, same-origin and cross-origin (CORS).

The page is served by the same GrpcApp (its ``fallback``); the cross-origin calls go to
``localhost`` while the page is on ``127.0.0.1``, so they need the CORS preflight and exposed
headers. In CI (``CI=true``) a missing browser or npm package fails instead of skipping.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

import asgi_grpc
from asgi_grpc.server import GrpcWebConfig
from tests.web import browser
from tests.web.servicer import FAIL_DETAILS, WebEcho, pb2_grpc

_missing = browser.missing()
if _missing is not None:
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"CI must run the browser tests, but {_missing}")
    pytest.skip(f"browser tests skipped: {_missing}", allow_module_level=True)

from playwright.async_api import async_playwright  # noqa: E402

INDEX = (
    b"<!doctype html><meta charset=utf-8><title>asgi_grpc</title><script src=/bundle.js></script>"
)


@pytest.fixture(scope="module")
def bundle() -> bytes:
    return browser.build_bundle()


def page_app(bundle: bytes) -> Any:
    """The fallback ASGI app: the page and its script."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body, kind = (
            (bundle, b"text/javascript")
            if scope["path"] == "/bundle.js"
            else (
                INDEX,
                b"text/html",
            )
        )
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", kind), (b"content-length", b"%d" % len(body))],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


@pytest.fixture
async def server(bundle: bytes) -> AsyncIterator[int]:
    srv = asgi_grpc.aio.server()
    pb2_grpc.add_EchoServicer_to_server(WebEcho(), srv)
    port = srv.add_insecure_port("127.0.0.1:0")
    srv.app.fallback = page_app(bundle)
    # Pages from 127.0.0.1 (any port) may call; pages from elsewhere (localhost) may not.
    srv.app.grpc_web = GrpcWebConfig(cors_origins=lambda o: o.startswith("http://127.0.0.1:"))
    await srv.start()
    try:
        yield port
    finally:
        await srv.stop(None)


@pytest.fixture
async def chromium(tmp_path: Any) -> AsyncIterator[Any]:
    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=browser.CHROMIUM,
            args=browser.CHROMIUM_ARGS,
            headless=True,
        )
        try:
            yield context
        finally:
            await context.close()


async def open_page(chromium: Any, url: str) -> Any:
    page = await chromium.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(url)
    await page.wait_for_function("window.pageReady === true", timeout=10_000)
    assert not errors, errors
    return page


def check_connect(results: dict[str, Any]) -> None:
    assert results["unary"] == "hi from the browser"
    assert results["stream"] == [["s-0", 0], ["s-1", 1], ["s-2", 2]]
    error = results["error"]
    assert error["codeName"] == "InvalidArgument"
    assert error["rawMessage"] == FAIL_DETAILS
    assert error["details"] == [{"message": "the detail", "index": 7}]  # status-details-bin
    assert error["metadata"]["x-fail"] == "yes"
    stream_error = results["streamError"]
    assert stream_error["received"] == [0, 1]
    assert stream_error["error"]["codeName"] == "InvalidArgument"
    assert stream_error["error"]["details"] == [{"message": "the detail", "index": 7}]
    metadata = results["metadata"]
    assert metadata["reply"] == "meta:from-browser"
    assert metadata["headers"]["x-echo"] == "from-browser"
    assert metadata["trailers"]["x-trail"] == "t-from-browser"
    assert 3000 < results["remainingMs"] <= 5000
    assert results["deadline"]["codeName"] == "DeadlineExceeded"


def check_text(results: dict[str, Any]) -> None:
    assert results["unary"] == "text hi"
    assert results["stream"] == {"got": ["t-0", "t-1", "t-2"]}
    assert results["error"] == {"code": 3, "message": FAIL_DETAILS, "xFail": "yes"}
    metadata = results["metadata"]
    assert metadata["reply"] == "meta:text-browser"
    assert metadata["status"] == 0
    assert metadata["headers"]["x-echo"] == "text-browser"
    assert metadata["trailers"]["x-trail"] == "t-text-browser"


async def test_same_origin(server: int, chromium: Any) -> None:
    base = f"http://127.0.0.1:{server}"
    page = await open_page(chromium, base + "/")
    results = await page.evaluate("base => window.runScenarios(base)", base)
    check_connect(results["connect"])
    check_text(results["text"])


async def test_cross_origin_with_cors(server: int, chromium: Any) -> None:
    page = await open_page(chromium, f"http://127.0.0.1:{server}/")
    results = await page.evaluate("base => window.runScenarios(base)", f"http://localhost:{server}")
    check_connect(results["connect"])
    check_text(results["text"])


async def test_cross_origin_refused_for_other_origins(server: int, chromium: Any) -> None:
    page = await open_page(chromium, f"http://localhost:{server}/")
    # Same origin works from there ...
    assert await page.evaluate("b => window.tryUnary(b)", f"http://localhost:{server}") == "x"
    # ... but the server does not allow localhost pages to call 127.0.0.1: the browser refuses.
    refused = await page.evaluate("b => window.tryUnary(b)", f"http://127.0.0.1:{server}")
    assert refused["codeName"] in ("Unknown", "Unavailable", "Internal"), refused
    assert "fetch" in refused["rawMessage"].lower(), refused
