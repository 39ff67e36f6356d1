"""Every manifest under deploy/k8s/ validates against the Kubernetes OpenAPI schemas (strict: no
unknown fields) of a pinned Kubernetes version, offline: kubernetes-validate ships the schemas,
and the test refuses any network connection while validating."""

from __future__ import annotations

import copy
import socket
from pathlib import Path
from typing import Any

import kubernetes_validate  # a dev extra: missing means the CI check fails, not skips
import pytest
from kubernetes_validate import utils

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
# The gRPC probes the Deployment uses are GA since 1.27; pinned so that the check is reproducible
# (kubernetes-validate picks the newest bundled schema not newer than this).
KUBERNETES_VERSION = "1.30.0"
MANIFESTS = sorted(K8S.glob("*.yaml"))


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"network access while validating: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def resources(path: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = utils.resources_from_file(str(path))
    return [resource for resource in found if resource]


def test_manifests_present() -> None:
    kinds = sorted(resource["kind"] for path in MANIFESTS for resource in resources(path))
    assert kinds == ["Deployment", "Service", "Service"]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.name)
def test_manifest_is_valid(path: Path) -> None:
    for resource in resources(path):
        validated = kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
        assert validated == "1.30"


def deployment() -> dict[str, Any]:
    (found,) = resources(K8S / "deployment.yaml")
    return found


def test_probes_are_grpc_on_the_served_port() -> None:
    (container,) = deployment()["spec"]["template"]["spec"]["containers"]
    port = container["ports"][0]["containerPort"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"] == {"port": port}


@pytest.mark.parametrize(
    "breakage",
    ["unknown_field", "named_probe_port", "missing_selector"],
)
def test_the_check_catches_broken_manifests(breakage: str) -> None:
    """The schema check is not vacuous: typical mistakes fail it."""
    broken = copy.deepcopy(deployment())
    container = broken["spec"]["template"]["spec"]["containers"][0]
    if breakage == "unknown_field":
        container["readinessProbe"]["grpcc"] = container["readinessProbe"].pop("grpc")
    elif breakage == "named_probe_port":
        container["livenessProbe"]["grpc"]["port"] = "grpc"  # must be a number
    else:
        del broken["spec"]["selector"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
