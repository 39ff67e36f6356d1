"""``python -m bench``: run the benchmark matrix and print the table."""

import sys

from bench.run import main

if sys.argv[1:2] == ["hostile"]:
    from bench.hostile.runner import main as hostile_main

    raise SystemExit(hostile_main(sys.argv[2:]))
raise SystemExit(main())
