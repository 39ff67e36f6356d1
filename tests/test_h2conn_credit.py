"""Receive-window credit (``FastH2Connection.acknowledge_received``, asgi_grpc/_h2conn.py), on
the client's and the server's connections, against h2's own ``acknowledge_received_data`` fed the
same frames: the connection's WINDOW_UPDATEs must be h2's exactly; a stream's first is held back
until three quarters of its window is owed (never leaving the peer less than a quarter to send),
later ones come at half as h2's do, and none once the peer has ended its side of the stream."""

from __future__ import annotations

from collections.abc import Callable

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest
from hyperframe.frame import Frame, WindowUpdateFrame

from asgi_grpc._h2conn import FastH2Connection
from asgi_grpc.client._h2 import H2_CONFIG, H2Connection
from asgi_grpc.server._hypercorn_h2 import GrpcH2Connection

from .test_h2conn_client import _REQUEST, _RESPONSE

WINDOW = 100_000  # the receiving side's SETTINGS_INITIAL_WINDOW_SIZE
_SERVER_CONFIG = h2.config.H2Configuration(
    client_side=False, header_encoding=None, validate_inbound_headers=False
)


def _client() -> h2.connection.H2Connection:
    return H2Connection(H2_CONFIG, 16 * 1024)


def _server() -> h2.connection.H2Connection:
    return GrpcH2Connection(_SERVER_CONFIG, 16 * 1024)


def _stock(side: str) -> h2.connection.H2Connection:
    """h2's own connection for the same side, the reference."""
    if side == "client":
        return h2.connection.H2Connection(H2_CONFIG)
    return h2.connection.H2Connection(_SERVER_CONFIG)


class Pair:
    """``receiver`` (the side under test, or h2's own) with an h2 peer sending it DATA on one
    stream: the client's response, or the server's request."""

    def __init__(self, side: str, receiver: h2.connection.H2Connection) -> None:
        self.side = side
        self.receiver = receiver
        peer_config = h2.config.H2Configuration(
            client_side=side == "server", header_encoding=None, validate_inbound_headers=False
        )
        self.peer = h2.connection.H2Connection(peer_config)
        receiver.local_settings = h2.settings.Settings(
            client=side == "client",
            initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: WINDOW},
        )
        receiver.initiate_connection()
        self.peer.initiate_connection()
        self._exchange()
        self.stream_id = 1
        if side == "client":  # our request, the peer's response headers
            receiver.send_headers(1, _REQUEST, end_stream=True)
            self._exchange()
            self.peer.send_headers(1, _RESPONSE)
        else:  # the peer's request headers
            self.peer.send_headers(1, _REQUEST)
        self._exchange()
        self.updates: list[tuple[int, int]] = []  # WINDOW_UPDATEs the receiver sent

    def _exchange(self) -> None:
        for _ in range(3):
            self.receiver.receive_data(self.peer.data_to_send())
            self.peer.receive_data(self.receiver.data_to_send())

    def send(self, size: int, *, end: bool = False, ack: Callable[[int, int], None]) -> None:
        """The peer sends ``size`` bytes; the receiver reads them and credits them with ``ack``;
        the peer reads what that made the receiver send."""
        frame = self.peer.max_outbound_frame_size
        for start in range(0, size, frame):
            last = start + frame >= size
            self.peer.send_data(
                self.stream_id, b"x" * min(frame, size - start), end_stream=end and last
            )
        for event in self.receiver.receive_data(self.peer.data_to_send()):
            if isinstance(event, h2.events.DataReceived):
                assert event.flow_controlled_length is not None
                ack(event.flow_controlled_length, self.stream_id)
        sent = self.receiver.data_to_send()
        self.updates += _window_updates(sent)
        self.peer.receive_data(sent)


def _window_updates(data: bytes) -> list[tuple[int, int]]:
    view, updates = memoryview(data), []
    while view:
        frame, length = Frame.parse_frame_header(view[:9])
        frame.parse_body(view[9 : 9 + length])
        if isinstance(frame, WindowUpdateFrame):
            updates.append((frame.stream_id, frame.window_increment))
        view = view[9 + length :]
    return updates


def _ours(side: str) -> Pair:
    return Pair(side, _client() if side == "client" else _server())


def _acknowledge(pair: Pair) -> Callable[[int, int], None]:
    receiver = pair.receiver
    assert isinstance(receiver, FastH2Connection)
    return receiver.acknowledge_received


def _h2s(pair: Pair) -> Callable[[int, int], None]:
    return pair.receiver.acknowledge_received_data


SIDES = ["client", "server"]


@pytest.mark.parametrize("side", SIDES)
def test_first_stream_credit_waits_until_three_quarters_of_the_window_is_owed(side: str) -> None:
    ours, stock = _ours(side), Pair(side, _stock(side))
    chunk = WINDOW // 10
    for _ in range(40):  # four windows' worth: the peer is never short of window
        for pair, ack in ((ours, _acknowledge(ours)), (stock, _h2s(stock))):
            assert pair.peer.local_flow_control_window(1) >= chunk
            pair.send(chunk, ack=ack)
        assert ours.peer.local_flow_control_window(1) >= WINDOW // 4 - chunk
    stream = [increment for stream_id, increment in ours.updates if stream_id == 1]
    # The first credit once 8 chunks are owed (>= 3/4 of the window), all of them; then at
    # every 5 (half the window), as h2 credits from the start.
    assert stream == [8 * chunk] + [5 * chunk] * 6
    assert [i for s, i in stock.updates if s == 1] == [5 * chunk] * 8
    # The connection's credit is h2's, update for update.
    connection = [update for update in ours.updates if update[0] == 0]
    assert connection == [update for update in stock.updates if update[0] == 0]
    assert connection


@pytest.mark.parametrize("side", SIDES)
def test_no_stream_credit_once_the_peer_has_ended_the_stream(side: str) -> None:
    ours, stock = _ours(side), Pair(side, _stock(side))
    for pair, ack in ((ours, _acknowledge(ours)), (stock, _h2s(stock))):
        pair.send(WINDOW * 6 // 10, ack=ack)  # more than half the window, less than 3/4
        pair.send(WINDOW * 3 // 10, end=True, ack=ack)
    assert 1 in [s for s, _ in stock.updates]  # h2 credits the stream once half is read
    assert [s for s, _ in ours.updates] == [0] * len(ours.updates)
    assert ours.updates == [update for update in stock.updates if update[0] == 0]
    receiver = ours.receiver
    assert isinstance(receiver, FastH2Connection)
    assert not receiver._held_credit  # (what was held for the stream went with its end)


@pytest.mark.parametrize("side", SIDES)
def test_credit_held_for_a_stream_goes_when_it_closes(side: str) -> None:
    ours = _ours(side)
    receiver = ours.receiver
    assert isinstance(receiver, FastH2Connection)
    ours.send(WINDOW // 2, ack=receiver.acknowledge_received)
    assert receiver._held_credit == {1: WINDOW // 2}
    ours.send(WINDOW // 4, ack=receiver.acknowledge_received)  # (credited: now at half)
    assert receiver._credited == {1}
    receiver.reset_stream(1)
    receiver.forget_credit(1)
    assert not receiver._held_credit
    assert not receiver._credited
    # Credit for DATA read from a stream that is gone: the connection's only, as h2's.
    receiver.acknowledge_received(1000, 1)
    receiver.acknowledge_received(1000, 99)  # (never opened: h2 would raise; nothing held)
    assert not receiver._held_credit
