"""The sans-IO NATS protocol and JetStream bookkeeping (relays/core/nats.py)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import FrameError
from protocol.header import Domain
from relays.core.nats import (
    BatchBuilder,
    BatchReader,
    Err,
    Info,
    Msg,
    NatsParser,
    NatsProtocolError,
    Ping,
    Pong,
    PublishRejected,
    PublishWindow,
    StreamCursor,
    StreamGap,
    ack_stream_seq,
    batch_after,
    batch_span,
    encode_pub,
    msg_id,
    parse_headers,
    publish_headers,
)

WIRE = (
    b'INFO {"server_id":"x","max_payload":1048576}\r\n'
    b"PING\r\n"
    b"MSG a.b 3 11\r\nhello world\r\n"
    b"HMSG $JS.x 4 _INBOX.r.7 24 29\r\nNATS/1.0\r\nK: v\r\nX: 1\r\n\r\nhello\r\n"
    b"HMSG d 5 31 31\r\nNATS/1.0 100 Idle Heartbeat\r\n\r\n\r\n"
    b"MSG empty 6 0\r\n\r\n"
    b"PONG\r\n+OK\r\n-ERR 'Authorization Violation'\r\n"
)


def _check(events: list[object]) -> None:
    assert isinstance(events[0], Info) and events[0].info["max_payload"] == 1048576
    assert isinstance(events[1], Ping)
    m = events[2]
    assert isinstance(m, Msg) and (m.subject, m.sid, m.reply, m.headers, m.payload) == ("a.b", 3, None, None, b"hello world")
    h = events[3]
    assert isinstance(h, Msg) and h.reply == "_INBOX.r.7" and h.payload == b"hello"
    assert h.header("K") == "v" and h.header("X") == "1" and h.status() == (0, "")
    hb = events[4]
    assert isinstance(hb, Msg) and hb.status() == (100, "Idle Heartbeat") and hb.payload == b""
    assert isinstance(events[5], Msg) and events[5].payload == b""
    assert isinstance(events[6], Pong)
    assert isinstance(events[8], Err) and events[8].message == "Authorization Violation"


def test_parser_whole_buffer() -> None:
    events = NatsParser().feed(WIRE)
    assert len(events) == 9
    _check(events)


@given(st.lists(st.integers(min_value=0, max_value=len(WIRE)), max_size=12))
def test_parser_any_split(cuts: list[int]) -> None:
    p = NatsParser()
    events: list[object] = []
    prev = 0
    for c in sorted(cuts) + [len(WIRE)]:
        events += p.feed(WIRE[prev:c])
        prev = c
    _check(events)


def test_parser_rejects_garbage() -> None:
    with pytest.raises(NatsProtocolError):
        NatsParser().feed(b"WHAT\r\n")
    with pytest.raises(NatsProtocolError):
        NatsParser().feed(b"MSG a 1 3\r\nabcX\r\n")


def test_encode_pub_round_trip() -> None:
    hdr = publish_headers(Domain.MARKET_DATA, 3, 41, 40)
    wire = encode_pub("alphapulse.market_data", b"frame", "_INBOX.a.1", hdr)
    assert wire.startswith(b"HPUB alphapulse.market_data _INBOX.a.1 ")
    # the server would deliver the same bytes as HMSG: parse them back
    line, rest = wire.split(b"\r\n", 1)
    _, subj, reply, hlen, total = line.split()
    ev = NatsParser().feed(b"HMSG %s 1 %s %s %s\r\n" % (subj, reply, hlen, total) + rest)[0]
    assert isinstance(ev, Msg) and ev.payload == b"frame"
    assert parse_headers(ev.headers or b"") == {"Nats-Msg-Id": msg_id(1, 3, 41), "Nats-Expected-Last-Sequence": "40"}
    assert msg_id(Domain.MARKET_DATA, 3, 41) == "1:3:41"
    assert encode_pub("s", b"x") == b"PUB s 1\r\nx\r\n"


def test_ack_subjects() -> None:
    assert ack_stream_seq("$JS.ACK.AP_MARKET_DATA.c1.1.1042.7.1700000000.12") == (1042, 7, 12)
    assert ack_stream_seq("$JS.ACK.dom.ACCHASH.AP_MARKET_DATA.c1.1.1042.7.1700000000.12.tok") == (1042, 7, 12)
    with pytest.raises(NatsProtocolError):
        ack_stream_seq("_INBOX.x.y")


def _ack(seq: int, **kw: object) -> bytes:
    return json.dumps({"stream": "AP_MARKET_DATA", "seq": seq, **kw}).encode()


def test_publish_window_advances_only_on_acks() -> None:
    w = PublishWindow(Domain.MARKET_DATA, next_stream_seq=11, position=110)  # stream holds D=110 at S=10
    t1, e1 = w.add(111)
    t2, e2 = w.add(112)
    assert (e1, e2) == (10, 11) and w.pending == 2 and w.position == 110
    assert w.ack(t1, _ack(11)) == 111 and w.stream_position == 11
    assert w.ack(t2, _ack(12, duplicate=True)) == 112
    assert w.counters.acked == 1 and w.counters.duplicates == 1 and w.pending == 0
    t3, _ = w.add(113)
    err = {"error": {"code": 400, "err_code": 10071, "description": "wrong last sequence: 14"}}
    with pytest.raises(PublishRejected, match="wrong last sequence"):
        w.ack(t3, json.dumps(err).encode())
    assert w.position == 112
    t4, _ = w.add(114)
    with pytest.raises(PublishRejected, match="expected 14"):
        w.ack(t4, _ack(20))  # stored somewhere else: another writer
    assert w.ack(999, _ack(1)) == 112  # an answer to an abandoned window is ignored


def test_stream_cursor_exactly_once() -> None:
    c = StreamCursor(position=4)
    assert c.reset(first_available=1) == 5
    assert c.accept(5, 1) and c.accept(6, 2)
    with pytest.raises(StreamGap):
        c.accept(8, 3)  # a stream gap within one consumer
    assert c.reset(first_available=1) == 7
    assert not c.accept(6, 1)  # a duplicate: dropped, still counts as the consumer's next
    assert c.accept(7, 2)
    with pytest.raises(StreamGap):
        c.accept(8, 4)  # consumer sequence skipped
    c.reset(first_available=1)
    c.heartbeat(0)
    with pytest.raises(StreamGap):
        c.heartbeat(1)  # the server says it delivered one we never saw
    c.reset(first_available=20)  # retention removed 8..19
    assert c.accept(20, 1) and c.position == 20
    assert c.counters.lost == 12 and c.counters.delivered == 4 and c.counters.duplicates == 1


# ---- batches: several relay frames per stream message


def _batch(*ds: int, size: int = 0) -> bytes:
    """Relay frames with domain sequences ``ds``, back to back (``size``: a longer body for the first)."""
    from relay_testkit import frame

    out = bytearray()
    for i, d in enumerate(ds):
        f = bytearray(frame(d, body=bytes(10 + size) if size and i == 0 else None))
        f[8:16] = d.to_bytes(8, "little")
        out += f
    return bytes(out)


def test_msg_id_and_headers_of_a_batch() -> None:
    assert msg_id(Domain.MARKET_DATA, 2, 101, 103) == "1:2:101-103"
    assert msg_id(Domain.MARKET_DATA, 2, 101, 101) == msg_id(Domain.MARKET_DATA, 2, 101) == "1:2:101"
    h = publish_headers(Domain.MARKET_DATA, 2, 101, 7, 103)
    assert parse_headers(h) == {"Nats-Msg-Id": "1:2:101-103", "Nats-Expected-Last-Sequence": "7"}


def test_batch_span_and_the_frames_after_a_position() -> None:
    one, uniform, mixed = _batch(5), _batch(5, 6, 7, 8), _batch(5, 6, 7, 9, size=20)
    assert batch_span(one) == (5, 5) and batch_span(uniform) == (5, 8) and batch_span(mixed) == (5, 9)
    assert batch_after(uniform, 4) == (5, 8, 4, uniform)  # all new: the bytes as they are
    first, last, n, data = batch_after(uniform, 6)  # partly delivered before a reconnect
    assert (first, last, n, bytes(data)) == (7, 8, 2, uniform[128:])
    first, last, n, data = batch_after(mixed, 5)
    assert (first, last, n, bytes(data)) == (6, 9, 3, mixed[84:])
    assert batch_after(mixed, 9) == (0, 0, 0, b"")
    with pytest.raises(FrameError):
        batch_after(uniform[:-3], 0)  # not whole frames


def test_batch_builder_cuts_by_bytes_never_across_epochs_and_skips_reissued() -> None:
    b = BatchBuilder(max_bytes=64 * 3, last_added=10)
    b.add(1, 11, _batch(11, 12), 2)
    b.add(1, 13, _batch(13, 14, 15, 16, 17), 5)  # bigger than a batch: split at frame boundaries
    b.add(2, 18, _batch(18), 1)  # a new relay epoch
    b.add(2, 16, _batch(16, 17, 18, 19), 4)  # reissued 16..18 (the relay lost an unsynced tail)
    assert b.reissued_skipped == 3 and b.last_added == 19
    cuts = []
    while b:
        epoch, first, last, payload = b.cut()
        assert batch_span(payload) == (first, last) and len(payload) <= 64 * 3
        cuts.append((epoch, first, last))
    assert cuts == [(1, 11, 12), (1, 13, 15), (1, 16, 17), (2, 18, 19)]  # whole pieces, as read
    assert b.pending_bytes == 0
    b.add(3, 20, _batch(20, 21), 2)
    assert b.cut() == (3, 20, 21, _batch(20, 21))


def test_publish_window_of_batches_advances_to_the_last_frame_acked() -> None:
    w = PublishWindow(Domain.MARKET_DATA, next_stream_seq=4, position=30)
    t1, e1 = w.add(31, 40)
    t2, e2 = w.add(41, 41)
    assert (e1, e2) == (3, 4) and w.last_added == 41
    assert w.ack(t1, _ack(4)) == 40 and w.stream_position == 4
    assert w.ack(t2, _ack(5)) == 41 and w.counters.frames == 11 and w.counters.acked == 2
    t3, _ = w.add(42, 50)
    with pytest.raises(PublishRejected, match="frames 42..50 stored at stream seq 9, expected 6"):
        w.ack(t3, _ack(9))


def test_batch_reader_delivers_each_frame_once_by_domain_sequence() -> None:
    r = BatchReader(position=6)  # asked from domain seq 7: the batch found holds 5..8 (stream seq 3)
    r.cursor.position = 2
    assert r.accept(3, 1, 0, _batch(5, 6, 7, 8))[:3] == (7, 8, 2)
    assert r.accept(4, 2, 0, _batch(9, 10))[:3] == (9, 10, 2)
    assert r.accept(4, 3, 0, _batch(9, 10)) is None  # the same stream message again: a duplicate
    with pytest.raises(StreamGap):
        r.accept(6, 4, 0, _batch(14))  # stream message 5 never came: recreate the consumer
    r2 = BatchReader(position=10)
    r2.cursor.position = 4
    assert r2.accept(5, 1, 0, _batch(13, 14))[:3] == (13, 14, 2)  # 11, 12 never reached the stream
    assert r2.counters.lost == 2 and r2.position == 14
    c = r.as_dict()
    assert (c["delivered"], c["duplicates"], c["messages_duplicated"], c["received"], c["gaps"]) == (4, 2, 1, 4, 1)
