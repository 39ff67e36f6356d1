"""Fail early, saying what to install, when the optional dependency is missing."""

try:
    import google.api.annotations_pb2
    import google.rpc.status_pb2  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "asgi_grpc.transcoding needs googleapis-common-protos (google.api.http annotations): "
        "pip install 'asgi_grpc[transcoding]'"
    ) from exc
