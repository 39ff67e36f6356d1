"""``python -m asgi_grpc.codegen``: the protoc plugin, for ``--plugin`` paths without the script."""

import sys

from .plugin import main

sys.exit(main())
