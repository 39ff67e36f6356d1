"""``python -m asgi_grpc.cli``."""

import sys

from ._main import PROG, main

if __name__ == "__main__":
    # argparse would name the program "__main__.py".
    sys.argv[0] = PROG
    sys.exit(main())
