#!/bin/sh
# deploy/app.py on uvicorn's HTTP/2 (zttp), from the repository root (pip install 'asgi_grpc[uvicorn]'):
#
#   deploy/uvicorn/serve.sh                 # 0.0.0.0:50051, 2 worker processes
#   HOST=127.0.0.1 PORT=8080 WORKERS=1 deploy/uvicorn/serve.sh
#
# What the flags are for (the same choices as deploy/hypercorn.toml):
#   --http zttp --http2          HTTP/2 with trailers: h2c with prior knowledge (gRPC insecure
#                                channels) and HTTP/1.1; with --ssl-certfile/--ssl-keyfile, ALPN h2
#   --timeout-keep-alive 300     gRPC channels keep idle connections open
#   --timeout-graceful-shutdown  on SIGTERM, in-flight RPCs get this long (below the pod's
#                                terminationGracePeriodSeconds minus the preStop sleep)
#   --no-server-header/--no-date-header   they would reach gRPC clients as initial metadata
#   --no-access-log              a log line per RPC costs more than a small RPC
#
# uvicorn's shortfalls for gRPC (README, "Other ASGI servers"): no GOAWAY notice on shutdown (new
# calls get UNAVAILABLE), a handler that does not read its request stalls its connection, and
# zttp's flood guard closes busy connections (GOAWAY ENHANCE_YOUR_CALM) under concurrent load.
# Exec: uvicorn is PID 1 in a container and gets SIGTERM directly.
exec uvicorn deploy.app:app \
    --http zttp --http2 \
    --host "${HOST:-0.0.0.0}" --port "${PORT:-50051}" \
    --workers "${WORKERS:-2}" \
    --lifespan on \
    --timeout-keep-alive 300 \
    --timeout-graceful-shutdown "${GRACE:-20}" \
    --no-server-header --no-date-header --no-access-log
