"""Hypercorn's HTTP/1.1 protocol, refusing at once what is neither HTTP/1.x nor HTTP/2.

A cleartext connection starts as HTTP/1.1 in Hypercorn until its bytes turn out to be the HTTP/2
client preface. h11 waits for a blank line (or 16 KiB) before it parses a request line, so a
client that sends random bytes held the connection open until the keep-alive timeout (minutes).
:class:`GrpcH11Protocol` looks at the first bytes of the connection: an HTTP/1.x request (or the
HTTP/2 preface, ``PRI * ...``) starts with a method token and a space, possibly after empty
lines (RFC 9112 2.2). Anything else is answered as RFC 9113 3.4 wants for a bad preface, with
GOAWAY PROTOCOL_ERROR, and closed.
"""

from __future__ import annotations

import re

from hypercorn.events import Closed, Event, RawData
from hypercorn.protocol.h11 import H11Protocol
from hyperframe.frame import GoAwayFrame

__all__ = ["GrpcH11Protocol"]

# Empty lines, then a method token (RFC 9110 tchar) followed by a space, or the data ends first.
_REQUEST_START = re.compile(rb"(?:\r?\n)*[!#$%&'*+\-.^_`|~0-9A-Za-z]*(?: |\Z)")
_BAD_PREFACE = bytes(
    GoAwayFrame(0, last_stream_id=0, error_code=1, additional_data=b"invalid preface").serialize()
)


class GrpcH11Protocol(H11Protocol):
    """Stock ``H11Protocol``, but a connection whose first bytes cannot start an HTTP request is
    closed at once (see the module docstring)."""

    _started = False
    _refused = False

    async def handle(self, event: Event) -> None:
        if isinstance(event, RawData) and not self._started:
            if self._refused:
                return
            if event.data:
                self._started = True
                if _REQUEST_START.match(event.data) is None:
                    self._refused = True
                    self._started = False
                    await self.send(RawData(data=_BAD_PREFACE))
                    await self.send(Closed())
                    return
        await super().handle(event)
