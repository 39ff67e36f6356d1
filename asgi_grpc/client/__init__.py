"""The asgi_grpc client: a grpc.aio Channel on an httpx HTTP/2 pool."""
