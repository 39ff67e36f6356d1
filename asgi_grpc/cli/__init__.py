"""``asgi-grpc``: serve gRPC apps with Hypercorn, and call any gRPC server that has reflection.

    asgi-grpc serve myapp:app --bind 127.0.0.1:50051 --reflection --health
    asgi-grpc list localhost:50051 --plaintext
    asgi-grpc describe localhost:50051 --plaintext helloworld.Greeter
    asgi-grpc call localhost:50051 --plaintext helloworld.Greeter/SayHello -d '{"name": "x"}'
    asgi-grpc health localhost:50051 --plaintext

Also ``python -m asgi_grpc.cli``; ``main(argv)`` runs it in-process and returns the exit status.
``asgi-grpc COMMAND --help`` documents each command (the servicer convention of ``serve``, JSON
input and exit statuses of ``call``).
"""

from ._errors import RPC_EXIT_BASE
from ._main import build_parser, main

__all__ = ["RPC_EXIT_BASE", "build_parser", "main"]
