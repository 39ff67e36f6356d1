"""``python -m bench``: run the benchmark matrix and print the table."""

from bench.run import main

raise SystemExit(main())
