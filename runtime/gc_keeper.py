"""Garbage-collection pauses kept off the hot path: the one keeper every long-running process uses.

CPython's cyclic collector walks every tracked object in a full (generation 2) collection, and it
starts one by itself whenever the objects that survived into the old generation since the last
one reach a quarter of it. A strategy process holding a 10,000-pool market tracks ~2 million
objects: one full collection there took 392 ms (measured with ``tools.bench.strategy``'s market),
a stall in the middle of whatever decision was running -- in the relay, 13-28 ms every few seconds
at 20,000 msgs/s; in a bridge, 5-90 ms.

So, ``settle`` seconds after start-up (the process has connected and loaded its state), everything
alive is collected once and moved to the permanent generation (``gc.freeze``), where no collection
looks at it again; every ``interval`` the objects made since are collected (a walk over those only)
and the survivors frozen too. Frozen objects are still freed by reference counting when their last
reference goes. What a freeze keeps for ever is a reference *cycle* among objects frozen while they
were alive (trio tasks and scopes of a connection torn down, an exception kept with its traceback).
That is bounded two ways: when ``epoch()`` (if given: e.g. connections given up so far) has moved
since the last round, and at the latest every ``full_every`` seconds, the keeper thaws everything
first, so that round's collection is a full one -- one pause, at a moment the keeper chose and
logged, instead of the collector's own at random.

``freezes`` and ``full_collections`` count the rounds; ``last_pause_s`` is the last round's
duration. A process reports ``alphapulse_gc_frozen_objects`` (the permanent generation's size:
steady in a healthy process) and ``alphapulse_gc_keeper_pause_seconds`` through ``observe``.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from .metrics import ProcessMetrics

log = logging.getLogger("runtime.gc_keeper")

SETTLE = 2.0  # seconds after start-up before the first freeze: connections made, state loading
INTERVAL = 30.0  # seconds between collections of what was made since the last freeze
FULL_EVERY = 3600.0  # at the latest, a full collection (everything thawed first) this often


class GcKeeper:
    def __init__(self, *, settle: float = SETTLE, interval: float = INTERVAL, full_every: float | None = FULL_EVERY,
                 epoch: Callable[[], object] | None = None) -> None:
        if interval <= 0 or settle < 0 or (full_every is not None and full_every <= 0):
            raise ValueError("gc keeper: settle must be >= 0, interval and full_every > 0")
        self.settle = settle
        self.interval = interval
        self.full_every = full_every
        self.epoch = epoch
        self.freezes = 0
        self.full_collections = 0
        self.last_pause_s = 0.0
        self._pauses: object | None = None

    def observe(self, pm: ProcessMetrics) -> None:
        pm.gauge("alphapulse_gc_frozen_objects",
                 "Objects in the permanent generation (gc.freeze): steady in a healthy process, a steady rise "
                 "is objects kept alive").set_function(gc.get_freeze_count)
        self._pauses = pm.histogram("alphapulse_gc_keeper_pause_seconds",
                                    "One round of the gc keeper: collect what was made since the last freeze "
                                    "(or everything, on a full round), then freeze the survivors.",
                                    buckets=(0.0005, 0.001, 0.005, 0.02, 0.1, 0.5, 2.0))

    def round(self, *, full: bool) -> float:
        """One collection and freeze now (``full``: everything thawed first); returns its duration."""
        t0 = time.perf_counter()
        if full:
            gc.unfreeze()
        gc.collect()
        gc.freeze()
        pause = time.perf_counter() - t0
        self.freezes += 1
        self.last_pause_s = pause
        if full:
            self.full_collections += 1
            log.info("gc keeper: full collection in %.1f ms, %d objects frozen", pause * 1e3, gc.get_freeze_count())
        if self._pauses is not None:
            self._pauses.observe(pause)  # type: ignore[attr-defined]
        return pause

    async def run(self) -> None:
        await trio.sleep(self.settle)
        mark = self.epoch() if self.epoch is not None else None
        full_due = time.monotonic() + self.full_every if self.full_every is not None else None
        self.round(full=False)  # the first round: everything alive is collected anyway (nothing frozen yet)
        while True:
            await trio.sleep(self.interval)
            full = False
            if self.epoch is not None and (now := self.epoch()) != mark:
                mark, full = now, True
            if full_due is not None and time.monotonic() >= full_due:
                full = True
            if full and self.full_every is not None:
                full_due = time.monotonic() + self.full_every
            self.round(full=full)


__all__ = ["FULL_EVERY", "INTERVAL", "SETTLE", "GcKeeper"]
