import pytest
from relay_testkit import frame

from protocol.header import Domain, stamp_domain_seq
from protocol.message import Message, decode, encode
from protocol.system import (
    Ack,
    ConsumerClass,
    Goodbye,
    Heartbeat,
    Hello,
    LatencyClass,
    Resync,
    ResyncReason,
    Subscribe,
    SubscribeMode,
    Welcome,
)
from relays.client.core import ConsumerCore, Liveness, ProducerCore


def sysf(*tlvs) -> bytes:  # type: ignore[no-untyped-def]
    return encode(Message(domain=Domain.SYSTEM, tlvs=tlvs))


def welcome(epoch: int = 1, head: int = 0, last: int = 0) -> bytes:
    return sysf(Welcome(epoch=epoch, head_seq=head, oldest_seq=1, last_source_seq=last, domain=1))


def stamped(*dseqs: int, type_code: int = 250) -> bytes:
    out = bytearray()
    for d in dseqs:
        f = bytearray(frame(d, type_code=type_code))
        stamp_domain_seq(f, 0, d)
        out += f
    return bytes(out)


def split(data: bytes) -> list[Message]:
    from protocol.header import check_prefix

    out, pos = [], 0
    while pos < len(data):
        n = check_prefix(data, pos)
        out.append(decode(data[pos : pos + n]))
        pos += n
    return out


def subscribe_of(data: bytes) -> Subscribe:
    return next(t for m in split(data) for t in m.tlvs if isinstance(t, Subscribe))


def test_consumer_delivers_in_order_exactly_once_across_a_split() -> None:
    c = ConsumerCore(Domain.MARKET_DATA, from_seq=1)
    sub = subscribe_of(c.start())
    assert (sub.mode, sub.from_seq) == (SubscribeMode.FROM_SEQ, 1)
    data = welcome() + stamped(1, 2, 3)
    got = c.receive_data(data[:100]) + c.receive_data(data[100:])
    assert [m.domain_seq for m in got] == [1, 2, 3]
    assert c.receive_data(stamped(2, 3, 4)) and c.last_seq == 4  # 2, 3 dropped as duplicates
    assert c.counters.duplicates == 2 and c.counters.delivered == 4
    assert list(c.delivered) == [range(1, 5)]


def test_gap_on_a_connection_breaks_it_and_resume_asks_for_the_next() -> None:
    c = ConsumerCore(Domain.MARKET_DATA, from_seq=1, raw=True)
    c.start()
    got = c.receive_data(welcome() + stamped(1, 2, 4, 5))
    assert len(got) == 2 and c.broken is not None and c.counters.gaps == 1
    c.lost_connection()
    sub = subscribe_of(c.start())
    assert (sub.mode, sub.from_seq) == (SubscribeMode.FROM_SEQ, 3)
    got = c.receive_data(welcome(head=5) + stamped(3, 4, 5))
    assert len(got) == 3 and c.counters.gaps_recovered == 1 and c.broken is None


def test_idle_heartbeat_ahead_of_us_is_a_lost_tail() -> None:
    c = ConsumerCore(Domain.MARKET_DATA, from_seq=1)
    c.start()
    c.receive_data(welcome() + stamped(1, 2) + sysf(Heartbeat(epoch=1, head_seq=2)))
    assert c.broken is None
    c.receive_data(sysf(Heartbeat(epoch=1, head_seq=5)))
    assert c.broken is not None and "lost tail" in str(c.broken)


def test_from_now_takes_any_first_sequence_and_heartbeat_sets_position() -> None:
    c = ConsumerCore(Domain.MARKET_DATA, from_seq=None)
    sub = subscribe_of(c.start())
    assert sub.mode == SubscribeMode.FROM_NOW
    c.receive_data(welcome(head=100) + sysf(Heartbeat(epoch=1, head_seq=0)) + sysf(Heartbeat(epoch=1, head_seq=100)))
    assert c.position == 100 and c.broken is None
    assert [m.domain_seq for m in c.receive_data(stamped(101))] == [101]


def test_resync_counts_lost_messages() -> None:
    c = ConsumerCore(Domain.MARKET_DATA, from_seq=1)
    c.start()
    r = sysf(Resync(requested_seq=1, oldest_available=50, reason=ResyncReason.TOO_OLD))
    got = c.receive_data(welcome(head=60) + r + stamped(50, 51))
    assert [m.domain_seq for m in got] == [50, 51]
    assert c.counters.resyncs == 1 and c.counters.lost == 49


def test_filtered_consumer_accepts_jumps() -> None:
    c = ConsumerCore(Domain.MARKET_DATA, from_seq=1, types={252})
    sub = subscribe_of(c.start())
    assert [t.code for t in sub.types] == [252]
    got = c.receive_data(welcome() + stamped(3, 7, type_code=252) + sysf(Heartbeat(epoch=1, head_seq=20)))
    assert [m.domain_seq for m in got] == [3, 7] and c.position == 20 and c.broken is None
    assert list(c.delivered) == [range(3, 4), range(7, 8)]


def test_goodbye_breaks_the_connection() -> None:
    c = ConsumerCore(Domain.MARKET_DATA)
    c.start()
    c.receive_data(welcome() + sysf(Goodbye(code=2, reason="cut off")))
    assert c.goodbye is not None and c.broken is not None


def test_epoch_change_is_counted() -> None:
    c = ConsumerCore(Domain.MARKET_DATA, from_seq=1)
    c.start()
    c.receive_data(welcome(epoch=1) + stamped(1))
    c.lost_connection()
    c.start()
    c.receive_data(welcome(epoch=2, head=1))
    assert c.counters.epoch_changes == 1 and c.counters.reconnects == 1


def test_from_now_reconnect_before_anything_arrived_resumes_after_the_first_welcomes_head() -> None:
    """Found by ``alphapulse chaos`` (a relay killed right after a from-now consumer subscribed): the
    reconnect said FROM_NOW again, so what was published while it reconnected was skipped. 'Now' is
    the first Welcome's head; the resume asks for the sequence after it."""
    c = ConsumerCore(Domain.MARKET_DATA, from_seq=None)
    c.start()
    c.receive_data(welcome(head=40))
    c.lost_connection()
    sub = subscribe_of(c.start())
    assert (sub.mode, sub.from_seq) == (SubscribeMode.FROM_SEQ, 41)
    got = c.receive_data(welcome(epoch=2, head=43) + stamped(41, 42, 43))
    assert [m.domain_seq for m in got] == [41, 42, 43] and c.broken is None


def test_welcomed_is_per_session() -> None:
    """``welcomed`` (what RelayConsumer.subscribed waits for) says the relay answered THIS
    session's Subscribe: false again on every new session until its Welcome arrives."""
    c = ConsumerCore(Domain.MARKET_DATA, from_seq=None)
    assert not c.welcomed
    c.start()
    assert not c.welcomed
    c.receive_data(welcome(epoch=1, head=5))
    assert c.welcomed
    c.lost_connection()
    c.start()
    assert not c.welcomed
    c.receive_data(welcome(epoch=1, head=7))
    assert c.welcomed


def test_producer_reads_runs_of_acks_and_still_checks_each_one() -> None:
    """A read holding nothing but Acks (the usual one) is taken in one step, the highest Ack
    counting; an Ack with a bad checksum, for another source, or split across reads is still
    refused or completed exactly as by the general decoder."""
    import pytest

    from protocol.errors import ProtocolError, RemoteProtocolError

    p = ProducerCore(Domain.MARKET_DATA, 7)
    p.start()
    p.receive_data(welcome(last=0))
    for _ in range(6):
        p.publish_payload(b"\xfa\x02ab")
    acks = [sysf(Ack(source_id=7, source_seq=n)) for n in (1, 3, 2)]
    p.receive_data(b"".join(acks))
    assert p.acked_seq == 3 and p.unacked == 3
    whole = sysf(Ack(source_id=7, source_seq=5))
    p.receive_data(whole[:20])  # a partial Ack waits for its rest
    assert p.acked_seq == 3
    p.receive_data(whole[20:])
    assert p.acked_seq == 5 and p.unacked == 1
    p.receive_data(sysf(Heartbeat(epoch=1, head_seq=5)) + sysf(Ack(source_id=7, source_seq=6)))
    assert p.acked_seq == 6 and p.unacked == 0
    bad = bytearray(sysf(Ack(source_id=7, source_seq=9)))
    bad[-1] ^= 1  # the sequence changed in flight: the CRC no longer matches
    with pytest.raises(ProtocolError):
        p.receive_data(bytes(bad))
    assert p.acked_seq == 6
    q = ProducerCore(Domain.MARKET_DATA, 7)
    q.start()
    q.receive_data(welcome(last=0))
    with pytest.raises(RemoteProtocolError, match="Ack for source 8"):
        q.receive_data(sysf(Ack(source_id=8, source_seq=1)))


def test_producer_outbox_acks_and_resend_after_reconnect() -> None:
    p = ProducerCore(Domain.MARKET_DATA, 7)
    p.start()
    p.receive_data(welcome(last=0))
    for _ in range(5):
        p.publish_payload(b"\xfa\x02ab")
    sent = split(p.data_to_send())
    assert [m.source_seq for m in sent] == [1, 2, 3, 4, 5] and all(m.source_id == 7 for m in sent)
    p.receive_data(sysf(Ack(source_id=7, source_seq=2)))
    assert p.unacked == 3 and p.acked_seq == 2
    p.lost_connection()
    p.start()
    assert p.data_to_send() == b""  # nothing goes out before Welcome
    p.publish_payload(b"\xfa\x02cd")  # published while disconnected
    p.receive_data(welcome(epoch=2, last=3))  # the relay had persisted 3 already
    assert [m.source_seq for m in split(p.data_to_send())] == [4, 5, 6]


def test_restarted_producer_continues_its_sequence() -> None:
    p = ProducerCore(Domain.MARKET_DATA, 7)
    p.start()
    p.receive_data(welcome(last=41))
    assert p.publish_payload(b"\xfa\x00") == 42


def test_liveness_timers() -> None:
    lv = Liveness(interval=0.25, dead_after=4)
    lv.reset(10.0)
    assert not lv.heartbeat_due(10.1) and lv.heartbeat_due(10.25)
    assert not lv.dead(10.9) and lv.dead(11.0)


def test_a_frame_that_does_not_decode_is_counted_reported_and_skipped() -> None:
    """Issue 17: one bad frame (in an old journal) used to break the connection and rewind to
    just before it, forever; now it is counted, reported and moved past."""
    from relay_testkit import undecodable_frame

    c = ConsumerCore(Domain.MARKET_DATA, from_seq=1)
    c.start()
    bad = bytearray(undecodable_frame(3))
    stamp_domain_seq(bad, 0, 3)
    got = c.receive_data(welcome(head=5) + stamped(1, 2) + bytes(bad) + stamped(4, 5))
    assert [m.domain_seq for m in got] == [1, 2, 4, 5]
    assert c.broken is None and c.position == 5
    assert c.counters.undecodable == 1 and c.counters.delivered == 4
    assert [s for s, _ in c.undecodable] == [3] and "claims 255 bytes" in c.undecodable[0][1]
    assert list(c.delivered) == [range(1, 3), range(4, 6)]  # the hole says which one


def test_forward_frames_restamps_under_this_producer_and_the_relay_takes_them_once() -> None:
    """Bridge-in's path: frames sequenced by another relay (D = 41..44, many source ids) become
    this producer's, with source_seq = D, valid CRCs, one outbox entry; a damaged frame is skipped."""
    from protocol.header import OFF_COVERED, read_header
    from relays.core.ingest import Ingest, Sequencer

    batch = bytearray()
    for d in range(41, 45):
        f = bytearray(frame(d, source_id=100 + d))
        stamp_domain_seq(f, 0, d)
        batch += f
    p = ProducerCore(Domain.MARKET_DATA, 9)
    p.start()
    p.receive_data(welcome(last=40))
    assert p.forward_frames(bytes(batch)) == (4, 44, [])
    assert p.unacked == 1 and p.last_published == 44
    sent = p.data_to_send()
    msgs = split(sent)  # decode checks every CRC
    assert [(m.source_id, m.source_seq, m.domain_seq) for m in msgs] == [(9, d, 0) for d in range(41, 45)]
    assert [m.tlvs for m in msgs] == [decode(batch[64 * i : 64 * i + 64]).tlvs for i in range(4)]  # payload kept
    # the relay takes them; the same batch resent (a reconnect) enters its log once
    seq = Sequencer(head_seq=40, last_source_seq={9: 40})
    ing = Ingest(seq, Domain.MARKET_DATA, 9)
    assert ing.scan(bytearray(sent), 0).chunks[0].count == 4
    assert ing.scan(bytearray(sent), 0).duplicates == 4 and seq.head_seq == 44
    # a frame damaged on the way (payload byte flipped, CRC not updated) is skipped and reported
    more = bytearray()
    for d in range(46, 49):
        f = bytearray(frame(d))
        stamp_domain_seq(f, 0, d)
        more += f
    more[64 + 60] ^= 0xFF
    taken, last, damaged = p.forward_frames(bytes(more))
    assert (taken, last) == (2, 48) and damaged == [(47, "checksum mismatch")]
    out = split(p.data_to_send())
    assert [m.source_seq for m in out] == [46, 48] and read_header(more, 0).checksum != 0 and OFF_COVERED == 16
    p.receive_data(sysf(Ack(source_id=9, source_seq=44)))
    assert p.unacked == 1  # the second batch (up to 48) still awaits its ack


def test_forward_frames_vectorised_run_matches_the_per_frame_rule() -> None:
    """A long run of equal-size frames takes the vectorised path (CRCs checked at once, new CRCs
    from the old ones by CRC-32's linearity): every frame must decode with the new identity, and a
    damaged frame deep in the run is still found and skipped."""
    for body in (None, bytes(300)):
        batch = bytearray()
        ds = [2**40 + 3 * i for i in range(1, 201)]  # increasing, not contiguous, high bytes set
        for i, d in enumerate(ds):
            f = bytearray(frame(i, source_id=1000 + 7 * i, body=body))
            stamp_domain_seq(f, 0, d)
            batch += f
        size = len(batch) // len(ds)
        batch[150 * size + 60] ^= 0x10
        p = ProducerCore(Domain.MARKET_DATA, 0xB1D60001)
        taken, last, damaged = p.forward_frames(bytes(batch))
        assert (taken, last, damaged) == (199, ds[-1], [(ds[150], "checksum mismatch")])
        msgs = split(p.outbox[0][1])  # decode checks every CRC
        assert [m.source_seq for m in msgs] == ds[:150] + ds[151:]
        assert {(m.source_id, m.domain_seq) for m in msgs} == {(0xB1D60001, 0)}


def test_a_consumer_sends_its_latency_class_in_the_subscribes_message() -> None:
    """CRITICAL and BACKGROUND travel as a ConsumerClass record in the same message as the Subscribe,
    on every (re)connection, and decode back to what was sent; NORMAL sends no record at all, so its
    bytes are exactly an older client's."""
    for name, member in (("critical", LatencyClass.CRITICAL), ("background", LatencyClass.BACKGROUND)):
        c = ConsumerCore(Domain.MARKET_DATA, from_seq=5, types={4}, name="s", latency=name)
        for _ in range(2):
            hello, sub = split(c.start())
            assert [type(t) for t in hello.tlvs] == [Hello]
            assert [type(t) for t in sub.tlvs] == [Subscribe, ConsumerClass]
            assert sub.tlvs[1] == ConsumerClass(latency=int(member))
            c.lost_connection()
    old_style = ConsumerCore(Domain.MARKET_DATA, from_seq=5, types={4}, name="s")
    normal = ConsumerCore(Domain.MARKET_DATA, from_seq=5, types={4}, name="s", latency="normal")
    assert old_style.latency is normal.latency is LatencyClass.NORMAL
    data = normal.start()
    assert data == old_style.start()
    assert not [t for m in split(data) for t in m.tlvs if isinstance(t, ConsumerClass)]
    assert ConsumerCore(Domain.SIGNAL, latency=LatencyClass.BACKGROUND).latency is LatencyClass.BACKGROUND


@pytest.mark.parametrize("bad", ["fast", "CRITICAL", "", 1, None])
def test_an_unknown_latency_class_is_a_value_error_naming_the_choices(bad: object) -> None:
    with pytest.raises(ValueError, match=r"latency must be one of 'critical', 'normal', 'background', not "):
        ConsumerCore(Domain.MARKET_DATA, latency=bad)  # type: ignore[arg-type]
