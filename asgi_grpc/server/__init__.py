"""The asgi_grpc server: gRPC as an ASGI application served by Hypercorn."""
