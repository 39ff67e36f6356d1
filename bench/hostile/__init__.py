"""The hostile-peer suite: ``python -m bench hostile`` (see bench/README.md, "Hostile peers").

Server side: raw HTTP/2 frames over real sockets against a live server (asgi_grpc, and grpcio's
aio server as the control). Client side: scripted lying servers against asgi_grpc's aio and
blocking channels and grpcio's client. Plus a frame fuzzer (``--fuzz``). Loopback only; every
attack is bounded in time and in bytes sent.
"""
