"""deploy/: the Hypercorn config and ASGI entry point, run the way the Docker image runs them
(``hypercorn --config deploy/hypercorn.toml deploy.app:app``, 2 worker processes)."""

from __future__ import annotations

import importlib
import signal
import sys
import time
from collections.abc import Iterator
from types import ModuleType

import grpc
import httpx
import psutil
import pytest
from hypercorn.config import Config

from tests.integration.checks import wait_until_serving
from tests.integration.echo_app import SERVICE, pb2, pb2_grpc
from tests.integration.servers import CLI, ROOT, hypercorn_cli, in_process, subprocess_env

DEPLOY = ROOT / "deploy"
CHECK = "/grpc.health.v1.Health/Check"
REGISTER = "tests.integration.echo_app:register"


def health_request(service: str) -> bytes:
    """grpc.health.v1.HealthCheckRequest encoded by hand (field 1, string; names < 128 bytes),
    so the check does not depend on deploy/app.py's own message classes."""
    name = service.encode()
    return b"\x0a" + bytes([len(name)]) + name if name else b""


SERVING = b"\x08\x01"  # HealthCheckResponse{status: SERVING}


def test_hypercorn_toml_is_fit_for_grpc() -> None:
    config = Config.from_toml(DEPLOY / "hypercorn.toml")
    assert config.workers == 2
    assert config.keep_alive_max_requests >= 2**62
    assert config.include_date_header is False
    assert config.include_server_header is False
    assert config.accesslog is None
    assert 0 < config.graceful_timeout < 30
    assert not config.ssl_enabled  # h2c
    assert config.bind == ["0.0.0.0:50051"]


@pytest.fixture
def deployed(request: pytest.FixtureRequest) -> Iterator[CLI]:
    """``hypercorn --config deploy/hypercorn.toml deploy.app:app`` (``--workers N`` if the test is
    parametrized indirectly with N)."""
    env = subprocess_env(ASGI_GRPC_SERVICERS=REGISTER)
    args = ["--config", str(DEPLOY / "hypercorn.toml"), "deploy.app:app"]
    workers = getattr(request, "param", None)
    if workers is not None:
        args += ["--workers", str(workers)]
    with hypercorn_cli(*args, env=env) as server:
        yield server


def call_pids(target: str, connections: int) -> set[int]:
    """The worker pids that answered one call on each of ``connections`` new connections."""
    # A local subchannel pool: grpcio would otherwise share one connection among the channels.
    options = [("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.insecure_channel(target, options=options) for _ in range(connections)]
    try:
        futures = [
            pb2_grpc.EchoStub(channel).Unary.future(pb2.EchoRequest(message="pid"), timeout=30)
            for channel in channels
        ]
        return {int(future.result().message) for future in futures}
    finally:
        for channel in channels:
            channel.close()


def test_deploy_config_serves_grpc_and_health_with_two_workers(deployed: CLI) -> None:
    wait_until_serving(deployed.target)
    with grpc.insecure_channel(deployed.target) as channel:
        stub = pb2_grpc.EchoStub(channel)
        assert stub.Unary(pb2.EchoRequest(message="hi"), timeout=10).message == "hi"
        streamed = stub.ServerStream(pb2.EchoRequest(count=3), timeout=10)
        assert [reply.index for reply in streamed] == [0, 1, 2]
        check = channel.unary_unary(CHECK)
        assert check(health_request(""), timeout=10) == SERVING
        assert check(health_request(SERVICE), timeout=10) == SERVING
        with pytest.raises(grpc.RpcError) as error:
            check(health_request("no.such.Service"), timeout=10)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND

    workers = {
        child.pid
        for child in psutil.Process(deployed.process.pid).children()
        if "spawn_main" in " ".join(child.cmdline())
    }
    assert len(workers) == 2, workers
    # Both processes accept from the one listening socket; which one gets a connection is up to
    # the kernel, so ask until both have answered (bounded).
    seen: set[int] = set()
    for _ in range(10):
        seen |= call_pids(deployed.target, 16)
        if seen == workers:
            break
    assert seen == workers

    assert deployed.stop() == 0, deployed.output()
    assert "Traceback" not in deployed.output(), deployed.output()


@pytest.mark.parametrize("deployed", [1, 2], indirect=True, ids=["1-worker", "2-workers"])
def test_sigterm_lets_in_flight_calls_finish(deployed: CLI) -> None:
    """What a Kubernetes rollout does to a pod: SIGTERM while RPCs are in flight. They complete
    (within graceful_timeout), then Hypercorn exits 0."""
    wait_until_serving(deployed.target)
    with grpc.insecure_channel(deployed.target) as channel:
        stub = pb2_grpc.EchoStub(channel)
        slow = [
            stub.Unary.future(pb2.EchoRequest(message=str(i), delay_ms=1500), timeout=20)
            for i in range(5)
        ]
        time.sleep(0.5)  # the calls reach the server (they take 1.5 s there)
        deployed.process.send_signal(signal.SIGTERM)
        assert [future.result().message for future in slow] == [str(i) for i in range(5)]
    assert deployed.stop() == 0, deployed.output()
    assert "Traceback" not in deployed.output(), deployed.output()


@pytest.fixture
def deploy_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """deploy/app.py imported in this process with a servicer and a REST fallback configured."""
    monkeypatch.setenv("ASGI_GRPC_SERVICERS", REGISTER)
    monkeypatch.setenv("ASGI_GRPC_FALLBACK", "tests.integration.echo_app:rest_app")
    monkeypatch.syspath_prepend(str(ROOT))
    sys.modules.pop("deploy.app", None)
    try:
        yield importlib.import_module("deploy.app")
    finally:
        sys.modules.pop("deploy.app", None)


async def test_deploy_app_builds_grpc_health_and_rest_from_the_environment(
    deploy_app: ModuleType,
) -> None:
    async with (
        in_process(deploy_app.app) as server,
        grpc.aio.insecure_channel(server.target) as channel,
        httpx.AsyncClient(base_url=server.url, timeout=10) as http,
    ):
        reply = await pb2_grpc.EchoStub(channel).Unary(pb2.EchoRequest(message="x"), timeout=10)
        assert reply.message == "x"
        assert await channel.unary_unary(CHECK)(health_request(SERVICE), timeout=10) == SERVING
        health = await http.get("/health")
        assert health.status_code == 200
        assert health.json()["status"] == "ok"


def test_deploy_app_rejects_a_malformed_servicer_setting(deploy_app: ModuleType) -> None:
    with pytest.raises(RuntimeError, match="module:attribute"):
        deploy_app.build_app("tests.integration.echo_app")
