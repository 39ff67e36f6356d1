"""Benchmarks: asgi_grpc against grpcio and grpclib on loopback.

Run ``python -m bench --help`` from the repository root; see bench/README.md.
"""
