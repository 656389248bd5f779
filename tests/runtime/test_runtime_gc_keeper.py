"""runtime.gc_keeper: what a round freezes, what only a full round frees, when rounds are full.

These run the keeper in the test process itself: every test thaws what it froze (``thawed``)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
import trio

from runtime.gc_keeper import GcKeeper
from runtime.metrics import ProcessMetrics


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> tuple[Node, weakref.ref[Node]]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a, weakref.ref(a)


@pytest.fixture(autouse=True)
def thawed() -> Iterator[None]:
    yield
    gc.unfreeze()
    gc.collect()


def test_a_round_moves_what_is_alive_out_of_the_collectors_sight() -> None:
    keeper = GcKeeper()
    alive = [Node() for _ in range(100)]
    before = gc.get_freeze_count()
    keeper.round(full=False)
    assert gc.get_freeze_count() >= before + len(alive)
    assert keeper.freezes == 1 and keeper.full_collections == 0
    assert keeper.last_pause_s > 0


def test_a_frozen_cycle_outlives_its_references_until_a_full_round() -> None:
    keeper = GcKeeper()
    a, ref = cycle()
    keeper.round(full=False)
    del a
    gc.collect()
    assert ref() is not None  # frozen while alive: no partial round can free it
    keeper.round(full=False)
    assert ref() is not None
    keeper.round(full=True)  # everything thawed first: a full collection frees it
    assert ref() is None
    assert keeper.full_collections == 1


def test_plain_garbage_made_between_rounds_is_freed_by_the_next_one() -> None:
    keeper = GcKeeper()
    keeper.round(full=False)
    a, ref = cycle()
    del a
    keeper.round(full=False)  # made after the last freeze: still in the collector's sight
    assert ref() is None


async def test_a_new_epoch_makes_the_next_round_full_and_full_every_bounds_the_wait() -> None:
    epoch = [0]
    keeper = GcKeeper(settle=0, interval=0.01, full_every=None, epoch=lambda: epoch[0])
    async with trio.open_nursery() as n:
        n.start_soon(keeper.run)
        with trio.fail_after(10):
            while keeper.freezes < 3:  # noqa: ASYNC110  (polling the keeper from outside)
                await trio.sleep(0.005)
        assert keeper.full_collections == 0  # same epoch, no full_every: partial rounds only
        a, ref = cycle()
        await trio.sleep(0.03)  # frozen while alive
        del a
        epoch[0] += 1  # e.g. a connection given up: its objects may hold cycles
        with trio.fail_after(10):
            while keeper.full_collections == 0:  # noqa: ASYNC110
                await trio.sleep(0.005)
        assert ref() is None
        n.cancel_scope.cancel()

    timed = GcKeeper(settle=0, interval=0.01, full_every=0.05)
    async with trio.open_nursery() as n:
        n.start_soon(timed.run)
        with trio.fail_after(10):
            while timed.full_collections < 2:  # noqa: ASYNC110
                await trio.sleep(0.005)
        assert timed.freezes > timed.full_collections  # partial rounds in between
        n.cancel_scope.cancel()


def test_metrics_report_the_frozen_generation_and_each_rounds_pause() -> None:
    pm = ProcessMetrics("test")
    keeper = GcKeeper()
    keeper.observe(pm)
    keeper.round(full=False)
    text = pm.render().decode()
    frozen = next(line for line in text.splitlines() if line.startswith("alphapulse_gc_frozen_objects "))
    assert float(frozen.split()[1]) == gc.get_freeze_count() > 0
    assert "alphapulse_gc_keeper_pause_seconds_count 1.0" in text


@pytest.mark.parametrize("kw", [{"interval": 0}, {"settle": -1}, {"full_every": 0}])
def test_bad_settings_are_refused(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="gc keeper"):
        GcKeeper(**kw)
