"""grpc.aio, name for name."""
