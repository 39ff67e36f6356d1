"""asgi_grpc: gRPC for the ASGI world."""
