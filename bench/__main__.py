"""``python -m bench``: run the benchmark matrix and print the table.

``python -m bench hostile ...``: the hostile-peer suite and frame fuzzer (bench/hostile/).
``python -m bench soak --minutes N``: the memory soak (bench/soak.py).
``python -m bench scale ...``: how cost grows with connections and streams (bench/scale.py).
"""

import sys

if sys.argv[1:2] == ["hostile"]:
    from bench.hostile.runner import main as hostile_main

    raise SystemExit(hostile_main(sys.argv[2:]))
if sys.argv[1:2] == ["scale"]:
    from bench.scale import main as scale

    raise SystemExit(scale(sys.argv[2:]))
if sys.argv[1:2] == ["soak"]:
    from bench.soak import main as soak

    raise SystemExit(soak(sys.argv[2:]))

from bench.run import main

raise SystemExit(main())
