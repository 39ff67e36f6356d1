"""grpc.ChannelConnectivity."""

from __future__ import annotations

import enum


@enum.unique
class ChannelConnectivity(enum.Enum):
    """A channel's connectivity state; values are grpcio's, so they compare by value."""

    IDLE = (0, "idle")
    CONNECTING = (1, "connecting")
    READY = (2, "ready")
    TRANSIENT_FAILURE = (3, "transient failure")
    SHUTDOWN = (4, "shutdown")
