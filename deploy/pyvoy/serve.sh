#!/bin/sh
# deploy/app.py inside Envoy with pyvoy, from the repository root (pip install 'asgi_grpc[pyvoy]'):
#
#   deploy/pyvoy/serve.sh                   # 0.0.0.0:50051, 2 Envoy worker threads
#   HOST=127.0.0.1 PORT=8080 WORKERS=1 deploy/pyvoy/serve.sh
#
# Through `asgi-grpc serve --server pyvoy` rather than the `pyvoy` command: on SIGTERM it drains
# Envoy (GOAWAY to clients, in-flight RPCs get --grace seconds) where `pyvoy` stops Envoy at once.
# One process: WORKERS are Envoy's worker threads, each running the app on its own event loop.
# For TLS add --tls-cert FILE --tls-key FILE (ALPN h2; HTTP/3 stays off).
# Envoy adds `date` and `server: envoy` response headers (initial metadata to gRPC clients).
exec asgi-grpc serve deploy.app:app --server pyvoy \
    --bind "${HOST:-0.0.0.0}:${PORT:-50051}" \
    --workers "${WORKERS:-2}" \
    --grace "${GRACE:-20}"
