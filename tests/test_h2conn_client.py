"""The client's h2 connection takes whole HEADERS frames and WINDOW_UPDATE frames from its frame
buffer without hyperframe's parse, and a header block on an open stream without h2's steps that
change nothing (asgi_grpc._h2conn): the events, what it sends back, its windows and its streams'
states must be those of h2's own client connection, for every response a server can send
(informational headers, trailers, resets, padded and prioritised blocks, CONTINUATIONs, window
updates on every stream state) and for the frames h2 refuses, however the bytes arrive. Request
bodies, framed by ``send_windowed`` without h2's state-machine transitions where those change
nothing but the stream's state, must leave the frames, windows and states h2's ``send_data`` does.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

import h2.config
import h2.connection
import h2.errors
import h2.exceptions
import h2.settings
import pytest
from hyperframe.frame import ContinuationFrame, DataFrame, HeadersFrame

from asgi_grpc.client._h2 import H2_CONFIG, GoawayTolerantStateMachine, H2Connection, send_windowed

from .hypercorn.test_window_update_parsing import _split, window_update

_MAX = 2**31 - 1
_REQUEST = [
    (b":method", b"POST"),
    (b":scheme", b"http"),
    (b":path", b"/s/M"),
    (b":authority", b"x"),
    (b"content-type", b"application/grpc"),
    (b"te", b"trailers"),
]
_RESPONSE = [(b":status", b"200"), (b"content-type", b"application/grpc")]
_TRAILERS = [(b"grpc-status", b"0"), (b"grpc-message", b"")]


def _reference() -> h2.connection.H2Connection:
    """h2's own client connection, with our configuration and GOAWAY-tolerant state machine
    (the one place ours differs from h2 on purpose: asgi_grpc.client._h2)."""
    conn = h2.connection.H2Connection(config=H2_CONFIG)
    conn.state_machine = GoawayTolerantStateMachine()
    return conn


def _ours() -> H2Connection:
    """The client's connection, as client/_connection.py sets it up."""
    conn = H2Connection(H2_CONFIG, 16 * 1024)
    conn.state_machine = GoawayTolerantStateMachine()
    return conn


def _block(server: h2.connection.H2Connection, headers: list[tuple[bytes, bytes]]) -> bytes:
    return bytes(server.encoder.encode(headers))


def _headers_frame(stream_id: int, block: bytes, flags: list[str], **fields: int) -> bytes:
    frame = HeadersFrame(stream_id, data=block, flags=flags)
    for name, value in fields.items():
        setattr(frame, name, value)
    return bytes(frame.serialize())


def _odd_block(
    rng: random.Random, server: h2.connection.H2Connection, stream_id: int, headers: list
) -> bytes:
    """A header block as h2 would not frame it: padded, prioritised, or split over
    CONTINUATIONs (END_STREAM on the HEADERS frame: these are trailers)."""
    block = _block(server, headers)
    kind = rng.choice(["padded", "priority", "continuation"])
    if kind == "padded":
        flags = ["END_HEADERS", "END_STREAM", "PADDED"]
        return _headers_frame(stream_id, block, flags, pad_length=rng.randrange(1, 9))
    if kind == "priority":
        flags = ["END_HEADERS", "END_STREAM", "PRIORITY"]
        return _headers_frame(stream_id, block, flags, depends_on=0, stream_weight=15)
    cut = rng.randrange(len(block) + 1)
    return (
        HeadersFrame(stream_id, data=block[:cut], flags=["END_STREAM"]).serialize()
        + ContinuationFrame(stream_id, data=block[cut:], flags=["END_HEADERS"]).serialize()
    )


def _events(conn: h2.connection.H2Connection, data: bytes) -> list[object]:
    out: list[object] = []
    try:
        for event in conn.receive_data(data):
            fields = sorted(
                (name, repr(value))
                for name, value in vars(event).items()
                if name not in ("stream_ended", "priority_updated")
            )
            extra = (getattr(event, "stream_ended", None), getattr(event, "priority_updated", None))
            out.append((type(event).__name__, fields, [type(e).__name__ for e in extra]))
    except h2.exceptions.ProtocolError as error:
        # (hpack's message names the memoryview it read: its address differs)
        out.append(("error", type(error).__name__, re.sub("0x[0-9a-f]+", "0x", str(error))))
    return out


# The last frames of a run: what h2 refuses, or takes in an odd state.
_ENDINGS: dict[str, Callable[[h2.connection.H2Connection, int, int], bytes]] = {
    "trailers without END_STREAM": lambda server, open_id, idle: _headers_frame(
        open_id, _block(server, _TRAILERS), ["END_HEADERS"]
    ),
    "informational with END_STREAM": lambda server, open_id, idle: _headers_frame(
        open_id, _block(server, [(b":status", b"100")]), ["END_HEADERS", "END_STREAM"]
    ),
    "headers on an idle stream": lambda server, open_id, idle: _headers_frame(
        idle, _block(server, _RESPONSE), ["END_HEADERS"]
    ),
    "headers on stream 2 (the server's, never pushed)": lambda server, open_id, idle: (
        _headers_frame(2, _block(server, _RESPONSE), ["END_HEADERS"])
    ),
    "undecodable block": lambda server, open_id, idle: _headers_frame(
        open_id, b"\xff\xff\xff\xff\xff", ["END_HEADERS"]
    ),
    "connection window overflow": lambda server, open_id, idle: window_update(0, _MAX),
    "content-length the body breaks": lambda server, open_id, idle: DataFrame(
        open_id, data=b"12345"
    ).serialize(),
    "stream window overflow": lambda server, open_id, idle: window_update(open_id, _MAX),
    "window update of 0": lambda server, open_id, idle: window_update(open_id, 0),
    "window update, 5-byte body": lambda server, open_id, idle: window_update(1, 5, length=5),
    "window update on an idle stream": lambda server, open_id, idle: window_update(idle, 9),
    "GOAWAY, then a response and updates": lambda server, open_id, idle: _goaway(server, open_id),
}


def _goaway(server: h2.connection.H2Connection, open_id: int) -> bytes:
    server.close_connection(last_stream_id=open_id)
    out = server.data_to_send()
    block = _block(server, _TRAILERS)
    return out + window_update(0, 7) + _headers_frame(open_id, block, ["END_HEADERS", "END_STREAM"])


def _run(
    reads: list[bytes], prelude: Callable[[h2.connection.H2Connection], None], conn
) -> tuple[object, ...]:
    prelude(conn)
    conn.data_to_send()
    events: list[object] = []
    sent = []
    for read in reads:
        events += _events(conn, read)
        sent.append(conn.data_to_send())
        if events and events[-1][0] == "error":
            break
    streams = [
        (sid, s.state_machine.state, s.outbound_flow_control_window, s.inbound_flow_control_window)
        for sid, s in sorted(conn.streams.items())
    ]
    return events, b"".join(sent), conn.outbound_flow_control_window, streams


@pytest.mark.parametrize("ending", sorted(_ENDINGS))
@pytest.mark.parametrize("seed", range(3))
def test_received_frames_match_h2_client(seed: int, ending: str) -> None:
    rng = random.Random(seed)
    config = h2.config.H2Configuration(client_side=False, header_encoding=None)
    server = h2.connection.H2Connection(config=config)
    server.initiate_connection()
    wire = [server.data_to_send()]
    requests: list[tuple[int, bool]] = []
    for _ in range(32):
        requests.append((len(requests) * 2 + 1, rng.random() < 0.6))  # (id, request ended)

    def prelude(conn: h2.connection.H2Connection) -> None:
        conn.initiate_connection()
        for stream_id, ended in requests:
            conn.send_headers(stream_id, _REQUEST, end_stream=ended)

    client = _reference()
    prelude(client)
    server.receive_data(client.data_to_send())
    wire.append(server.data_to_send())
    answering = [stream_id for stream_id, _ in requests[:-1]]
    state = dict.fromkeys(answering, "new")
    steps = 0
    while answering and steps < 400:
        steps += 1
        stream_id = rng.choice(answering)
        choice = rng.random()
        if state[stream_id] == "new":
            if rng.random() < 0.15:
                server.send_headers(stream_id, [(b":status", b"100")])  # informational
            elif rng.random() < 0.1:  # trailers-only
                server.send_headers(stream_id, _RESPONSE + _TRAILERS, end_stream=True)
                answering.remove(stream_id)
            else:
                server.send_headers(stream_id, _RESPONSE)
                state[stream_id] = "answered"
        elif choice < 0.4:
            server.send_data(stream_id, rng.randbytes(rng.randrange(1, 30)))
        elif choice < 0.6:
            raw = bytearray(window_update(rng.choice([0, stream_id]), rng.randrange(1, 70_000)))
            if rng.random() < 0.2:
                raw[5] |= 0x80  # the stream id's reserved bit: ignored
            if rng.random() < 0.2:
                raw[4] = rng.randrange(256)  # no flags defined: all ignored
            wire.append(server.data_to_send())
            wire.append(bytes(raw))
        elif choice < 0.67:
            server.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
            answering.remove(stream_id)
        elif choice < 0.75:
            wire.append(server.data_to_send())
            wire.append(_odd_block(rng, server, stream_id, _TRAILERS))
            server.streams[stream_id].state_machine.process_input(
                h2.stream.StreamInputs.SEND_END_STREAM
            )
            answering.remove(stream_id)
        elif choice < 0.8:
            server.ping(rng.randbytes(8))
        else:
            server.send_headers(stream_id, _TRAILERS, end_stream=True)
            answering.remove(stream_id)
        wire.append(server.data_to_send())
    # The last request, answered and still open, gets the ending.
    open_id, _ = requests[-1]
    if server.streams[open_id].state_machine.state is not h2.stream.StreamState.CLOSED:
        length = [(b"content-length", b"3")] if ending.startswith("content-length") else []
        server.send_headers(open_id, _RESPONSE + length)
    wire.append(server.data_to_send())
    wire.append(_ENDINGS[ending](server, open_id, len(requests) * 2 + 1))
    data = b"".join(wire)

    ours = _run(_split(data, random.Random(seed), aligned=False), prelude, _ours())
    theirs = _run(_split(data, random.Random(seed), aligned=False), prelude, _reference())
    assert ours == theirs
    kinds = [event[0] for event in ours[0]]
    assert kinds.count("ResponseReceived") > 5
    assert kinds.count("TrailersReceived") > 3
    assert kinds.count("WindowUpdated") > 5
    assert kinds.count("InformationalResponseReceived") > 0


def _send_all(
    conn: h2.connection.H2Connection, stream_id: int, data: bytes, end_stream: bool, ours: bool
) -> tuple[object, ...]:
    """A request body as the client sends it (``send_windowed``: frames of the peer's size, as
    far as the windows go), or as h2's own ``send_data`` sends the same frames."""
    try:
        if ours:
            out: list[bytes | memoryview] = []
            offset = send_windowed(conn, stream_id, data, 0, end_stream, out)
            sent = b"".join([conn.data_to_send(), *out])
        else:
            offset, total = 0, len(data)
            if not total and end_stream:
                conn.end_stream(stream_id)
            window = conn.local_flow_control_window(stream_id)
            while window > 0 and offset < total:
                size = min(window, conn.max_outbound_frame_size, total - offset)
                end = end_stream and offset + size >= total
                conn.send_data(stream_id, data[offset : offset + size], end_stream=end)
                offset += size
                window -= size
            sent = conn.data_to_send()
    except h2.exceptions.H2Error as error:
        return ("error", type(error).__name__, str(error), conn.data_to_send())
    return offset, sent


@pytest.mark.parametrize("seed", range(4))
def test_sent_request_bodies_match_h2_client(seed: int) -> None:
    """The request side (send_headers, then bodies by send_windowed, in every stream state a
    server can leave a stream in): the frames, windows and states of h2's own client."""
    rng = random.Random(seed)
    config = h2.config.H2Configuration(client_side=False, header_encoding=None)
    server = h2.connection.H2Connection(config=config)
    server.local_settings = h2.settings.Settings(
        client=False, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 40_000}
    )
    server.initiate_connection()
    conns = {"ours": _ours(), "theirs": _reference()}
    for conn in conns.values():
        conn.initiate_connection()
    server.receive_data(conns["theirs"].data_to_send())
    wire = server.data_to_send()
    results: dict[str, list[object]] = {name: [] for name in conns}
    for name, conn in conns.items():
        conn.data_to_send()
        results[name].append(_events(conn, wire))
    for step in range(120):
        stream_id = step * 2 + 1
        headers_only = rng.random() < 0.1  # (a request already ended: sending more fails)
        for conn in conns.values():
            conn.send_headers(stream_id, _REQUEST, end_stream=headers_only)
        server.receive_data(conns["theirs"].data_to_send())
        conns["ours"].data_to_send()
        fate = rng.random()
        if fate < 0.15:  # answered and ended before the request is: half-closed remote
            server.send_headers(stream_id, _RESPONSE + _TRAILERS, end_stream=True)
        elif fate < 0.25:
            server.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
        elif fate < 0.35:
            server.increment_flow_control_window(rng.randrange(1, 50_000))
        elif fate < 0.4:
            server.update_settings({h2.settings.SettingCodes.MAX_FRAME_SIZE: 16_384 + step})
        wire = server.data_to_send()
        data = rng.randbytes(rng.choice([0, 1, 5, 100, 20_000, 70_000]))
        end_stream = rng.random() < 0.7
        for name, conn in conns.items():
            results[name].append(_events(conn, wire))
            results[name].append(_send_all(conn, stream_id, data, end_stream, name == "ours"))
        server.receive_data(conns["theirs"].data_to_send())
        conns["ours"].data_to_send()
        server.data_to_send()
    for name, conn in conns.items():
        results[name].append(
            (
                conn.state_machine.state,
                conn.outbound_flow_control_window,
                # (closed streams h2 has purged already are left out: ours purges them less
                # often, see asgi_grpc.client._h2.H2Connection)
                [
                    (sid, s.state_machine.state, s.outbound_flow_control_window)
                    for sid, s in sorted(conn.streams.items())
                    if s.state_machine.state is not h2.stream.StreamState.CLOSED
                ],
            )
        )
    assert results["ours"] == results["theirs"]
    sent = [r for r in results["ours"] if isinstance(r, tuple) and len(r) == 2]
    assert any(isinstance(r[0], int) and r[0] > 0 for r in sent)
    assert any(r[0] == "error" for r in results["ours"] if isinstance(r, tuple))


def test_stream_limit_follows_the_peers_settings_as_h2() -> None:
    """Ours keeps the peer's MAX_CONCURRENT_STREAMS from its SETTINGS frames (none named, then
    named, changed, split over reads): new streams are refused exactly where h2 refuses them."""
    config = h2.config.H2Configuration(client_side=False, header_encoding=None)
    server = h2.connection.H2Connection(config=config)
    server.initiate_connection()
    limit = h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS
    wire = [server.data_to_send(), b""]
    for value in (3, 1, 6, 2):
        server.update_settings({limit: value})
        wire.append(server.data_to_send())
    outcomes: dict[str, list[object]] = {}
    for name, conn in (("ours", _ours()), ("theirs", _reference())):
        conn.initiate_connection()
        outcome = outcomes[name] = []
        stream_id = 1
        for data in wire:
            for cut in (data[:7], data[7:]):  # (a frame split over two reads)
                conn.receive_data(cut)
            opened = []
            for _ in range(4):
                try:
                    conn.send_headers(stream_id, _REQUEST)
                except h2.exceptions.TooManyStreamsError as error:
                    outcome.append(str(error))
                    break
                outcome.append(stream_id)
                opened.append(stream_id)
                if isinstance(conn, H2Connection):  # (ours counts what the client tells it)
                    conn.open_streams += 1
                stream_id += 2
            for done in opened[:-1]:  # one stays open for the next round
                conn.reset_stream(done, h2.errors.ErrorCodes.CANCEL)
                if isinstance(conn, H2Connection):
                    conn.open_streams -= 1
        outcome.append(conn.remote_settings.max_concurrent_streams)
        if isinstance(conn, H2Connection):
            assert conn.max_streams == conn.remote_settings.max_concurrent_streams
    assert outcomes["ours"] == outcomes["theirs"]
    assert any(isinstance(o, str) for o in outcomes["ours"])
