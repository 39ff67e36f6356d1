"""Fail early, saying what to install, when the optional dependency is missing."""

try:
    # No stubs ship with googleapis-common-protos: the ignores keep a user's `mypy --strict`
    # quiet (asgi_grpc's own configuration ignores the missing imports instead).
    import google.api.annotations_pb2  # type: ignore[import-untyped, unused-ignore]
    import google.rpc.status_pb2  # type: ignore[import-untyped, unused-ignore]  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "asgi_grpc.transcoding needs googleapis-common-protos (google.api.http annotations): "
        "pip install 'asgi_grpc[transcoding]'"
    ) from exc
