"""execution/schedule.py: the pool-exclusion rule (every branch) and the durable signal cursor."""

from __future__ import annotations

import pytest

from execution.schedule import PoolScheduler, Ready, SignalCursor, in_flight_limit
from protocol.execution import SubmissionMode


def started(ready: list[Ready[str]]) -> list[tuple[str, int]]:
    return [(r.item, r.after_block) for r in ready]


def test_disjoint_signals_start_at_once_up_to_the_limit() -> None:
    s: PoolScheduler[str] = PoolScheduler(limit=2)
    assert started(s.offer(1, {10, 11}, "a")) == [("a", 0)]
    assert started(s.offer(2, {20, 21}, "b")) == [("b", 0)]
    assert s.offer(3, {30}, "c") == []  # disjoint, but two are in flight
    assert not s.contended(3) and not s.contended(99)  # waits for the limit; 99 does not wait
    assert started(s.done(1)) == [("c", 0)]
    assert set(s.in_flight) == {2, 3} and not s.waiting


def test_a_signal_through_a_pool_in_flight_waits_and_re_validates_past_the_block_it_landed_in() -> None:
    s: PoolScheduler[str] = PoolScheduler(limit=4)
    s.offer(1, {10, 11}, "a")
    assert s.offer(2, {11, 12}, "b") == []  # pool 11 is in a's transaction
    assert started(s.done(1, block=57)) == [("b", 57)]


def test_one_that_ended_without_a_transaction_landing_sets_no_block() -> None:
    s: PoolScheduler[str] = PoolScheduler(limit=4)
    s.offer(1, {10}, "a")
    s.offer(2, {10}, "b")
    assert started(s.done(1, block=0)) == [("b", 0)]


def test_only_waiters_sharing_a_pool_with_the_ended_signal_get_its_block() -> None:
    s: PoolScheduler[str] = PoolScheduler(limit=1)
    s.offer(1, {10}, "a")
    s.offer(2, {10}, "b")  # waits for a's pool
    s.offer(3, {30}, "c")  # waits for the limit only
    assert started(s.done(1, block=9)) == [("b", 9)]
    assert started(s.done(2, block=11)) == [("c", 0)]


def test_signals_through_one_pool_run_in_arrival_order_and_a_disjoint_one_passes_them() -> None:
    s: PoolScheduler[str] = PoolScheduler(limit=4)
    s.offer(1, {10}, "a")
    assert s.offer(2, {10, 20}, "b") == []
    assert s.offer(3, {20}, "c") == []  # pool 20 is not in flight, but b (ahead, waiting) wants it
    assert s.contended(2) and s.contended(3)
    assert started(s.offer(4, {40}, "d")) == [("d", 0)]  # shares nothing with anything: passes
    assert started(s.done(1, block=5)) == [("b", 5)]
    assert started(s.done(2, block=6)) == [("c", 6)]
    assert started(s.done(4)) == []
    s.done(3)
    assert s.idle


def test_a_signal_without_pools_is_never_held_by_a_pool() -> None:
    s: PoolScheduler[str] = PoolScheduler(limit=2)
    s.offer(1, {10}, "a")
    assert started(s.offer(2, (), "malformed")) == [("malformed", 0)]


def test_a_key_offered_twice_is_a_bug() -> None:
    s: PoolScheduler[str] = PoolScheduler(limit=1)
    s.offer(1, {10}, "a")
    with pytest.raises(ValueError, match="offered twice"):
        s.offer(1, {11}, "a again")
    s.offer(2, {10}, "b")
    with pytest.raises(ValueError, match="offered twice"):
        s.offer(2, {12}, "b again")


def test_a_lower_limit_applies_from_the_next_start_a_higher_one_at_once() -> None:
    s: PoolScheduler[str] = PoolScheduler(limit=2)
    s.offer(1, {1}, "a")
    s.offer(2, {2}, "b")
    s.offer(3, {3}, "c")
    s.limit = 1
    assert s.done(1) == []  # still one in flight
    s.limit = 3
    assert started(s.done(2)) == [("c", 0)]


def test_bundles_run_one_at_a_time_public_and_shadow_pipeline() -> None:
    assert in_flight_limit(4, SubmissionMode.PRIVATE) == 1 and in_flight_limit(4, SubmissionMode.HYBRID) == 1
    assert in_flight_limit(4, SubmissionMode.PUBLIC) == 4 and in_flight_limit(3, SubmissionMode.SHADOW) == 3
    assert in_flight_limit(0, SubmissionMode.PUBLIC) == 1


def test_the_cursor_moves_only_past_signals_that_all_ended() -> None:
    c = SignalCursor(4)
    for seq in (5, 6, 8):
        c.delivered(seq)
    assert c.ended(6) is None and c.position == 4  # 5 still running: a restart must redeliver it
    assert c.ended(5) == 6 and c.position == 6
    assert c.ended(8) == 8 and c.position == 8
    with pytest.raises(ValueError, match="delivered after"):
        c.delivered(8)


def test_the_spec_states_the_limits_the_code_has() -> None:
    """specs/executor-concurrency.md gives the default and range of max_in_flight and the fill's gas."""
    from pathlib import Path

    from execution.config import SubmissionConfig
    from execution.core import CANCEL_GAS

    spec = (Path(__file__).resolve().parents[2] / "specs" / "executor-concurrency.md").read_text()
    assert SubmissionConfig().max_in_flight == 4 and "(default **4**, 1..64" in spec
    assert f"({CANCEL_GAS:,} gas" in spec
    import msgspec

    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"max_in_flight": 65}, SubmissionConfig)
