"""What an h2 connection remembers of its closed streams, bounded to what it needs.

h2 keeps how each closed stream was closed (``H2Connection._closed_streams``) for its last 65,536
streams: about 110 bytes a stream, so a long-lived connection grows by ~7 MiB over its first
65,536 calls (the steady server growth of issue 9's soak). h2 only ever asks whether a stream was
closed *by a reset*: a frame on such a stream is a stream error (RST_STREAM), on any other closed
stream a connection error, whether remembered or not. So only resets need remembering, and only
for as long as the peer may still have frames in flight for them.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from h2.stream import StreamClosedBy

# Resets remembered per connection; a late frame comes within a round trip, not 1,024 resets later.
MAX_REMEMBERED_RESETS = 1024

_RESETS = frozenset({StreamClosedBy.RECV_RST_STREAM, StreamClosedBy.SEND_RST_STREAM})


class ClosedByReset(OrderedDict[int, Any]):
    """A drop-in for ``H2Connection._closed_streams`` that keeps only streams closed by
    RST_STREAM, the last :data:`MAX_REMEMBERED_RESETS` of them."""

    def __setitem__(self, key: int, value: Any) -> None:
        if value in _RESETS:
            super().__setitem__(key, value)
            if len(self) > MAX_REMEMBERED_RESETS:
                self.popitem(last=False)


def bound_closed_streams(connection: Any) -> None:
    """Make ``connection`` (an ``h2.connection.H2Connection``) remember only recent resets."""
    connection._closed_streams = ClosedByReset()
