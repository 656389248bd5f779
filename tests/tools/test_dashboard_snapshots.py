"""Snapshot tests of the dashboard's layout: the screen rendered by Textual's Pilot at a fixed size, as text,
compared with a committed snapshot (``tests/tools/snapshots/*.txt``).

pytest-textual-snapshot would do this with SVGs, but its syrupy pin needs pytest < 9 and this suite runs on
pytest 9; so this is the same idea in a few lines: the app is fed a deterministic stream (synthetic relay
messages of a devnet run mid-demo, a frozen clock), the compositor's full frame is exported as plain text
(what ``App.export_screenshot`` renders, without the SVG), and any difference fails with a diff. After an
intended layout change, regenerate with ``ALPHAPULSE_UPDATE_SNAPSHOTS=1 pytest tests/tools/test_dashboard_snapshots.py``
and review the diff of the ``.txt`` files like code.
"""

from __future__ import annotations

import asyncio
import difflib
import io
import os
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from test_dashboard_model import T0, USDC, V2_POOL, V3_POOL, WETH_ID, msg, result, signal_msg, started
from textual.pilot import Pilot
from textual.widgets import DataTable

from market.display import PoolInfo, QuoteCurrency, Registry, TokenInfo
from protocol.execution import Outcome
from protocol.header import Domain
from protocol.ids import TokenId
from protocol.market import BlockHeader, V2Reserves, V3Swap
from tools.dashboard.app import DashboardApp
from tools.dashboard.model import DashboardModel

SNAPSHOTS = Path(__file__).parent / "snapshots"
SIZE = (200, 56)
UPDATE = os.environ.get("ALPHAPULSE_UPDATE_SNAPSHOTS") == "1"
USDC_ID = TokenId.of(1, USDC)
REGISTRY = Registry(
    tokens={int(WETH_ID): TokenInfo(symbol="WETH", decimals=18), int(USDC_ID): TokenInfo(symbol="USDC", decimals=6)},
    pools={(1, V3_POOL.address.lower()): PoolInfo(venue="uniswap_v3", fee_pips=500),
           (1, V2_POOL.address.lower()): PoolInfo(venue="uniswap_v2_a", fee_pips=3000)},
    quote=QuoteCurrency(name="USD", tokens={1: int(USDC_ID)}, paths={int(WETH_ID): (int(V3_POOL),)},
                        native={1: int(WETH_ID)}))
SQRT_2004 = 1_770_000_000_000_000_000_000_000_000_000_000  # sqrtPriceX96 of ~2,004 USDC per WETH (USDC is token0)
STATS = {"head_seq": 0, "epoch": 1, "rate_msgs_per_s": 0.0, "producers": [{"name": "p"}],
         "consumers": [{"name": "executor", "lag": 0}, {"name": "portfolio", "lag": 2}]}


def screen_text(app: DashboardApp) -> str:
    """The whole screen as plain text, as ``App.export_screenshot`` renders it."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True, color_system=None,
                      record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return "\n".join(line.rstrip() for line in console.export_text(styles=False).splitlines()) + "\n"


def assert_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    if UPDATE:
        path.write_text(text)
        return
    if not path.exists():
        path.write_text(text)
        raise AssertionError(f"{path} did not exist; written now -- review and commit it")
    want = path.read_text()
    if text != want:
        diff = "".join(difflib.unified_diff(want.splitlines(True), text.splitlines(True), f"{name} (committed)",
                                            f"{name} (now)"))
        raise AssertionError(f"the dashboard's layout changed ({path}); if intended, regenerate with "
                             f"ALPHAPULSE_UPDATE_SNAPSHOTS=1:\n{diff}")


def run(app: DashboardApp, scenario: Callable[[Pilot], Awaitable[None]]) -> None:
    apply_inbox(app)

    async def go() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await scenario(pilot)

    asyncio.run(asyncio.wait_for(go(), 30))


def make_app() -> DashboardApp:
    app = DashboardApp(DashboardModel(), publisher=[].append, start_worker=False, sender="dashboard@test",
                       refresh_interval=3600, registry=REGISTRY, clock=lambda: T0)  # ticks only when the test says
    return app


def feed_mid_demo(app: DashboardApp) -> None:
    """A devnet run a minute in: heads and pool states, 24 signals (executed with profit and with a loss,
    stale, reverted, halted, one in flight), the relays up with their consumers."""
    s = 10**9
    market = [msg(Domain.MARKET_DATA, 1, BlockHeader(chain_id=1, number=412, timestamp=1, gas_limit=30_000_000,
                                                    gas_used=1, hash=b"\x01" * 32, parent_hash=b"\x02" * 32,
                                                    base_fee=875_000_000, priority_fee=10**9))]
    for i in range(6):
        market.append(msg(Domain.MARKET_DATA, 2 + 2 * i, V3Swap(
            pool=V3_POOL, block_number=406 + i, log_index=1, tx_hash=bytes([i + 1]) * 32, amount0=-(i + 2) * 10**9,
            amount1=(i + 2) * 10**18 // 2004, sqrt_price_x96=SQRT_2004 + i * 10**27, liquidity=3 * 10**22, tick=-200_290 + i),
            t=T0 + i * s))
        market.append(msg(Domain.MARKET_DATA, 3 + 2 * i, V2Reserves(
            pool=V2_POOL, block_number=406 + i, log_index=0, reserve0=2_004_000 * 10**6 - i * 10**9,
            reserve1=1000 * 10**18 + i * 10**17), t=T0 + i * s))
    app.inbox.put_messages(int(Domain.MARKET_DATA), market, T0)
    plan = [Outcome.EXECUTED, Outcome.STALE, Outcome.EXECUTED, Outcome.EXECUTED, Outcome.REVERTED,
            Outcome.EXECUTED, Outcome.STALE, Outcome.EXECUTED, Outcome.HALTED, Outcome.EXECUTED, Outcome.EXECUTED,
            Outcome.STALE, Outcome.EXECUTED, Outcome.EXECUTED, Outcome.UNPROFITABLE, Outcome.EXECUTED,
            Outcome.EXECUTED, Outcome.STALE, Outcome.EXECUTED, Outcome.EXECUTED, Outcome.EXECUTED,
            Outcome.EXECUTED, Outcome.STALE]
    sigs, execs = [], []
    seq = 0
    for i, outcome in enumerate(plan, 1):
        sid = 7_300_000_000_000_000_000 + i * 1_000_003
        t = T0 + i * 2 * s
        sigs.append(signal_msg(i, sid, net=(3 + i % 5) * 10**14, t=t))
        if outcome in (Outcome.EXECUTED, Outcome.REVERTED):
            seq += 1
            execs.append(msg(Domain.EXECUTION, seq, started(sid, nonce=i), t=t + 40_000_000))
        seq += 1
        realized = (2 + (i * 7) % 9) * 10**14 if outcome == Outcome.EXECUTED else 0
        reason = {Outcome.STALE: "pool moved since block 405", Outcome.HALTED: "stop #3 scope all",
                  Outcome.UNPROFITABLE: "re-validated net -0.000120 WETH", Outcome.REVERTED: "K"}.get(outcome, "")
        res = result(sid, outcome, realized=realized, reason=reason)
        if outcome not in (Outcome.EXECUTED, Outcome.REVERTED):  # never sent: no gas
            res = replace(res, gas_used=0, effective_gas_price=0, tx_hash=b"\0" * 32)
        execs.append(msg(Domain.EXECUTION, seq, res, t=t + 1_100_000_000))
    in_flight = 7_300_000_000_000_000_000 + 99 * 1_000_003
    sigs.append(signal_msg(len(plan) + 1, in_flight, net=6 * 10**14, t=T0 + 50 * s))
    app.inbox.put_messages(int(Domain.SIGNAL), sigs, T0)
    app.inbox.put_messages(int(Domain.EXECUTION), execs, T0)
    for dom, head in ((Domain.MARKET_DATA, 13), (Domain.SIGNAL, len(sigs)), (Domain.EXECUTION, seq)):
        app.inbox.put(("status", int(dom), {"connected": True, "stats": {**STATS, "head_seq": head},
                                            "counters": {"gaps": 0, "resyncs": 0, "lost": 0, "reconnects": 0}}))


def apply_inbox(app: DashboardApp) -> None:
    """What the app's tick does with its inbox, before the app runs: the first frame then shows the whole
    stream at once. (Fed while running, a table first sized for "connecting…" keeps that width -- columns
    grow but never shrink -- so the frame would depend on how the ticks fell.)"""
    for item in app.inbox.drain():
        if item[0] == "msgs":
            _, domain, msgs, now_ns = item
            for m in msgs:
                app.model.on_message(domain, m, now_ns)
        else:
            app.model.on_relay_status(item[1], now_ns=app.clock(), **item[2])


async def settle(pilot: Pilot, app: DashboardApp) -> str:
    """The screen once Textual has laid it out: DataTables size their columns and the footer lists its keys
    on later refreshes than the one that added the content, so the frame is taken when two consecutive
    frames agree, the tables have no pending width update and the footer is drawn."""
    last = ""
    for _ in range(200):
        await pilot.pause(0.02)
        text = screen_text(app)
        if (text == last and "Emergency stop" in text
                and not any(t._require_update_dimensions for t in app.query(DataTable))):
            return text
        last = text
    raise AssertionError("the dashboard's screen did not settle in 200 frames")


def test_main_screen_mid_demo() -> None:
    app = make_app()
    feed_mid_demo(app)

    async def scenario(pilot: Pilot) -> None:
        text = await settle(pilot, app)
        assert "realized net" in text and "USD" in text  # the P&L line, in the quote currency too
        assert_snapshot("dashboard_mid_demo", text)

    run(app, scenario)


def test_tracer_of_an_executed_signal() -> None:
    app = make_app()
    feed_mid_demo(app)
    app.selected_signal = 7_300_000_000_000_000_000 + 3 * 1_000_003  # as if chosen with enter

    async def scenario(pilot: Pilot) -> None:
        text = await settle(pilot, app)
        assert text.index("detected ") < text.index("started ") < text.index("result ")
        assert_snapshot("dashboard_tracer", text)

    run(app, scenario)


def test_no_data_state() -> None:
    app = make_app()
    for dom in (Domain.MARKET_DATA, Domain.SIGNAL, Domain.EXECUTION):
        app.inbox.put(("status", int(dom), {"connected": False, "error": "relay down (ConnectionRefusedError)"}))

    async def scenario(pilot: Pilot) -> None:
        text = await settle(pilot, app)
        assert "NO DATA" in text and "RISK: trading" not in text
        assert_snapshot("dashboard_no_data", text)

    run(app, scenario)
