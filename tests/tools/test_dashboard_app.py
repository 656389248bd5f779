"""The dashboard app driven headlessly with Textual's Pilot and a scripted stream (no relays).

Textual runs on asyncio while pytest-trio's trio_mode claims every ``async def`` test, so each
test is a plain function that runs its scenario with ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import test_dashboard_model as T
import trio
from test_dashboard_model import T0, V2_POOL, V3_POOL, WETH, msg, result, signal_msg, started
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Input, Static

from protocol.execution import Outcome
from protocol.header import Domain
from protocol.market import V2Reserves, V3Swap
from protocol.system import EmergencyStop, Resume, StopScope
from protocol.tlv import TLV
from relays.client import RelayProducer
from tools.dashboard import views
from tools.dashboard.app import ConfirmDialog, DashboardApp, main
from tools.dashboard.model import DashboardModel
from tools.dashboard.relay_io import Inbox, RelayWorker

SIZE = (160, 48)


def run(app: DashboardApp, scenario: Callable[[Pilot], Awaitable[None]]) -> None:
    async def go() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await scenario(pilot)

    asyncio.run(asyncio.wait_for(go(), 20))


def make_app(published: list[TLV] | None = None) -> DashboardApp:
    sink = published if published is not None else []
    return DashboardApp(DashboardModel(), publisher=sink.append, start_worker=False, sender="dashboard@test",
                        refresh_interval=0.05)


def feed(app: DashboardApp) -> None:
    """A scripted stream through the same inbox the relay worker fills."""
    app.inbox.put_messages(1, [
        msg(Domain.MARKET_DATA, 1, V2Reserves(pool=V2_POOL, block_number=100, log_index=0, reserve0=5_000,
                                              reserve1=7_000)),
        msg(Domain.MARKET_DATA, 2, V3Swap(pool=V3_POOL, block_number=101, log_index=3, tx_hash=b"\x07" * 32,
                                          amount0=-11, amount1=12, sqrt_price_x96=(1 << 96) * 3,
                                          liquidity=424_242, tick=21_972)),
    ], T0)
    app.inbox.put_messages(2, [signal_msg(10, 777, net=4_321), signal_msg(11, 778, net=55)], T0)
    app.inbox.put_messages(3, [
        msg(Domain.EXECUTION, 20, started(777, nonce=42), t=T0 + 3_000_000),
        msg(Domain.EXECUTION, 21, result(777, Outcome.EXECUTED, realized=4_000), t=T0 + 12_000_000_000),
    ], T0)


def cells(app: DashboardApp, table_id: str) -> list[list[str]]:
    table = app.query_one(f"#{table_id}", DataTable)
    return [[str(c) for c in table.get_row(r.key)] for r in table.ordered_rows]


def text_of(app: DashboardApp, wid: str) -> str:
    return str(app.query_one(f"#{wid}", Static).render())


async def until(pilot: Pilot, cond: Callable[[], bool], what: str) -> None:
    """Pause until ``cond()`` holds. ``pilot.pause()`` alone waits for the messages queued when it is
    called and then for the process to look idle (little CPU over 20 ms): on a loaded machine a process
    that is not scheduled looks idle too, and what those messages cause in turn (a dialog's compose and
    focus, a button's Pressed bubbling to the screen, the dismiss callback) can still be pending."""
    deadline = time.monotonic() + 15  # a hang guard: run() bounds the whole scenario to 20 s anyway
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.02)


def dialog_ready(app: DashboardApp) -> bool:
    """The confirmation dialog is up, laid out, and its reason field has the focus: keys typed before
    that go to the app's bindings (the "r" of "all clear" would open a second dialog) and a click on a
    button not laid out yet lands on the screen's corner."""
    screen = app.screen
    return (isinstance(screen, ConfirmDialog) and bool(screen.query("#reason"))
            and screen.query_one("#reason", Input).has_focus and screen.query_one("#confirm", Button).region.area > 0
            and screen.query_one("#cancel", Button).region.area > 0)


async def settle(pilot: Pilot, app: DashboardApp) -> None:
    await pilot.pause(0.15)  # > one refresh tick
    app.tick()
    await pilot.pause()


def test_panels_show_pool_state_signal_economics_and_outcome() -> None:
    app = make_app()

    async def scenario(pilot: Pilot) -> None:
        feed(app)
        await settle(pilot, app)
        market = cells(app, "market")
        assert market[0][0] == "0x2222…2222" and market[0][3] == "101" and market[0][6] == "21972"
        assert market[0][5] == "424,242" and market[0][1] == "9"  # (sqrtP / 2^96)^2
        assert market[1][4:6] == ["5,000", "7,000"]
        assert cells(app, "swaps")[0][3:5] == ["-11", "12"]
        signals = {r[2]: dict(zip(views.SIGNAL_COLUMNS, r)) for r in cells(app, "signals")}
        assert signals["777"]["net predicted"] == "4,321" and signals["777"]["status"] == "EXECUTED"
        assert signals["778"]["net predicted"] == "55" and signals["778"]["status"] == "OPEN"
        assert signals["777"]["gross"] == "4,921"  # gross = net + 600
        exe = dict(zip(views.EXECUTION_COLUMNS, cells(app, "execution")[0]))
        assert exe["signal"] == "777" and exe["nonce"] == "42" and exe["outcome"] == "EXECUTED"
        assert exe["realized gross"] == "4,000"
        pnl = text_of(app, "pnl")
        assert "4,000" in pnl and "trading" in pnl and "EXECUTED 1" in pnl
        health = {r[0]: r for r in cells(app, "health")}
        assert health["signal"][3] == "11" and health["execution"][3] == "21"

    run(app, scenario)


def test_bursts_collapse_into_one_repaint() -> None:
    app = make_app()
    # a frozen clock: with the real one, a tick that crosses the model's one-second rate window (the
    # 5,000-message tick can take that long on a loaded machine) rightly repaints the health panel
    app.clock = lambda: T0

    async def scenario(pilot: Pilot) -> None:
        await settle(pilot, app)
        before = app.repaints
        app.inbox.put_messages(1, [
            msg(Domain.MARKET_DATA, i, V2Reserves(pool=V2_POOL, block_number=i, log_index=0, reserve0=i,
                                                  reserve1=2 * i)) for i in range(1, 5001)
        ], T0)
        app.tick()
        assert app.repaints == before + 1
        assert cells(app, "market")[0][3:6] == ["5,000", "5,000", "10,000"]
        app.tick()  # nothing new: no repaint
        assert app.repaints == before + 1

    run(app, scenario)


def test_inspector_and_tracer_follow_the_selected_signal() -> None:
    app = make_app()

    async def scenario(pilot: Pilot) -> None:
        feed(app)
        await settle(pilot, app)
        assert "select a signal" in text_of(app, "inspector")
        table = app.query_one("#signals", DataTable)
        table.focus()
        keys = [r.key.value for r in table.ordered_rows]
        table.move_cursor(row=keys.index("sig-777"))
        await pilot.press("enter")
        await until(pilot, lambda: app.selected_signal == 777, "the row selection")  # RowSelected bubbles up
        inspector = text_of(app, "inspector")
        for needle in ("Signal 777", "EXECUTED", "gross profit", "4,921", "- gas cost", "- flash fee",
                       "- slippage", "= net profit", "4,321", WETH, "2 hop(s)", "0x" + "11" * 20,
                       "0x" + "22" * 20, "2,300,000,000"):
            assert needle in inspector, needle
        tracer = text_of(app, "tracer")
        for needle in ("detected", "signal#10", "started", "execution#20", "result", "execution#21",
                       "+3.0 ms", "+12.00 s", "nonce 42", "EXECUTED"):
            assert needle in tracer, needle
        # the open signal: the tracer says what it is still waiting for
        table.move_cursor(row=keys.index("sig-778"))
        await pilot.press("enter")
        await until(pilot, lambda: app.selected_signal == 778, "the row selection")
        assert "started    (waiting)" in text_of(app, "tracer") and "OPEN" in text_of(app, "inspector")
        # rows of the Execution panel select their signal too
        exe = app.query_one("#execution", DataTable)
        exe.focus()
        exe.move_cursor(row=0)
        await pilot.press("enter")
        await until(pilot, lambda: app.selected_signal == 777, "the row selection")
        assert app.selected_signal == 777 and "nonce 42" in text_of(app, "tracer")

    run(app, scenario)


def test_stop_and_resume_publish_after_confirmation() -> None:
    published: list[TLV] = []
    app = make_app(published)

    async def scenario(pilot: Pilot) -> None:
        await pilot.press("s")
        await until(pilot, lambda: dialog_ready(app), "the stop dialog")
        assert await pilot.click("#confirm"), "the click missed the confirm button"
        await until(pilot, lambda: not isinstance(app.screen, ConfirmDialog) and published, "the stop to be sent")
        assert len(published) == 1 and isinstance(published[0], EmergencyStop)
        stop = published[0]
        assert (stop.scope, stop.scope_value, stop.sender) == (StopScope.ALL, 0, "dashboard@test")
        assert stop.reason == "operator stop from the dashboard" and stop.stop_id > 0

        # the stop comes back on the execution relay: the risk panel shows HALTED
        app.inbox.put_messages(3, [msg(Domain.EXECUTION, 30, stop)], T0)
        await settle(pilot, app)
        assert "HALTED" in text_of(app, "pnl") and "dashboard@test" in text_of(app, "pnl")
        assert "HALTED" in app.sub_title

        await pilot.press("r")
        await until(pilot, lambda: dialog_ready(app), "the resume dialog")
        await pilot.press(*"all clear", "enter")  # the default reason is selected: typing replaces it
        await until(pilot, lambda: not isinstance(app.screen, ConfirmDialog) and len(published) > 1,
                    "the resume to be sent")
        assert len(published) == 2 and isinstance(published[1], Resume)
        res = published[1]
        assert (res.scope, res.stop_id, res.sender) == (StopScope.ALL, 0, "dashboard@test")
        assert res.reason == "all clear"
        app.inbox.put_messages(3, [msg(Domain.EXECUTION, 31, res)], T0)
        await settle(pilot, app)
        assert "trading" in text_of(app, "pnl") and "HALTED" not in app.sub_title

    run(app, scenario)


def test_cancelling_the_dialog_publishes_nothing() -> None:
    published: list[TLV] = []
    app = make_app(published)

    async def scenario(pilot: Pilot) -> None:
        await pilot.press("s")
        await until(pilot, lambda: dialog_ready(app), "the stop dialog")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ConfirmDialog), "the dialog to close")
        await pilot.press("r")
        await until(pilot, lambda: dialog_ready(app), "the resume dialog")
        assert await pilot.click("#cancel"), "the click missed the cancel button"
        await until(pilot, lambda: not isinstance(app.screen, ConfirmDialog), "the dialog to close")
        await pilot.pause()
        assert published == []

    run(app, scenario)


def test_relays_down_shows_relay_down(tmp_path) -> None:
    """With the real worker and no relay listening, the app runs and says so."""
    inbox = Inbox()
    worker = RelayWorker(tmp_path, inbox, stats_interval=0.1, connect_timeout=0.2, retry_after=0.2,
                         publish_connect_timeout=0.3)
    app = DashboardApp(DashboardModel(), worker=worker, refresh_interval=0.05, sender="dashboard@test")

    async def scenario(pilot: Pilot) -> None:
        for _ in range(100):
            await pilot.pause(0.05)
            if all(r[1] == "relay down" for r in cells(app, "health")):
                break
        assert [r[1] for r in cells(app, "health")] == ["relay down"] * 3
        assert "relay down: market_data, signal, execution" in app.sub_title
        # honest: no data is not "trading"
        assert app.sub_title.startswith("NO DATA") and "trading" not in app.sub_title
        assert "RISK: unknown -- NO DATA" in text_of(app, "pnl") and "RISK: trading" not in text_of(app, "pnl")
        # a stop with no relay is reported, not raised
        await pilot.press("s")
        await until(pilot, lambda: dialog_ready(app), "the stop dialog")
        assert await pilot.click("#confirm"), "the click missed the confirm button"
        await until(pilot, lambda: "NOT published" in text_of(app, "pnl"), "the publisher's notice")
        assert "EmergencyStop NOT published" in text_of(app, "pnl")

    run(app, scenario)
    assert worker._thread is not None and not worker._thread.is_alive()


def test_main_parses_socket_dir(monkeypatch, tmp_path) -> None:
    seen = {}

    def fake_run(self: DashboardApp) -> int:
        seen["dir"] = self.worker.socket_dir if self.worker else None
        return 0

    monkeypatch.setattr(DashboardApp, "run", fake_run)
    assert main(["--socket-dir", str(tmp_path)]) == 0
    assert seen["dir"] == tmp_path


def test_worker_against_real_relays(tmp_path) -> None:
    """The relay worker with three real relays: it consumes all domains, reads their stats, and an
    EmergencyStop it publishes comes back on the execution relay and halts the model."""
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root))
    procs: list[subprocess.Popen[bytes]] = []
    domains = ("market_data", "signal", "execution")
    try:
        for dom in domains:
            log = open(tmp_path / f"{dom}.log", "wb")
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "tools.cli", "relay", "--domain", dom, "--socket", str(tmp_path / f"{dom}.sock"),
                 "--data-dir", str(tmp_path / f"data-{dom}"), "--fsync", "off"],
                cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT))
            log.close()
        inbox = Inbox()
        worker = RelayWorker(tmp_path, inbox, stats_interval=0.1, connect_timeout=0.5, retry_after=0.1)
        model = DashboardModel()

        def pump(until: Callable[[], bool], what: str) -> None:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                for item in inbox.drain():
                    if item[0] == "msgs":
                        model.on_messages(item[1], item[2], item[3])
                    elif item[0] == "status":
                        model.on_relay_status(item[1], now_ns=time.time_ns(), **item[2])
                    else:
                        model.notice(item[1], item[2])
                if until():
                    return
                time.sleep(0.02)
            raise AssertionError(f"timed out waiting for {what}; logs: "
                                 + " | ".join((tmp_path / f"{d}.log").read_text()[-300:] for d in domains))

        async def before() -> None:  # made before the dashboard opened: it still shows them
            async with RelayProducer.connect("signal", str(tmp_path / "signal.sock"), source_id=11) as p:
                await p.publish(signal_msg(0, 4).tlvs)
            async with RelayProducer.connect("execution", str(tmp_path / "execution.sock"), source_id=12) as p:
                await p.publish(result(4, Outcome.EXECUTED, realized=100))

        trio.run(before)
        worker.start()
        try:
            # subscribed (listed among the relay's consumers) on all three relays
            pump(lambda: all(h.connected and h.consumers for h in model.health.values()), "three live relays")

            async def produce() -> None:
                async with RelayProducer.connect("signal", str(tmp_path / "signal.sock"), source_id=11) as p:
                    await p.publish(signal_msg(0, 5).tlvs)
                async with RelayProducer.connect("execution", str(tmp_path / "execution.sock"), source_id=12) as p:
                    await p.publish(started(5))
                    await p.publish(result(5, Outcome.EXECUTED, realized=777))

            trio.run(produce)
            worker.publish(EmergencyStop(scope=0, scope_value=0, stop_id=1, reason="test", sender="dashboard@test"))
            # the stop can reach the model through the consumer before the publishing task has put its
            # notice in the inbox (it does so after its flush returns): wait for both
            # the signal and execution relays are read by separate consumers: wait for the signal
            # itself too, not only for its outcome (which can be read first)
            pump(lambda: model.halted and 5 in model.signals and model.signals[5].status == "EXECUTED"
                 and model.signals[5].identity is not None
                 and any("EmergencyStop published" in text for _, text in model.notices),
                 "the signal, its outcome, the stop and the publisher's notice")
        finally:
            worker.stop()
        assert [s.step for s in model.signals[5].steps] == ["detected", "started", "result"]
        assert model.signals[4].status == "EXECUTED"  # from before the dashboard connected
        assert model.realized == {T.WETH_ID: 877}
        assert model.active_stops[1].sender == "dashboard@test"
        assert any("EmergencyStop published" in text for _, text in model.notices)
        assert model.health[3].last_seq == 4 and model.health[2].last_seq == 2
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_inbox_bounds_the_backlog_and_the_work_per_tick() -> None:
    inbox = Inbox(max_messages=1000)
    for i in range(30):
        inbox.put_messages(1, [i] * 100, T0)
    inbox.put(("notice", "kept", T0))
    assert len(inbox) <= 1000 and inbox.dropped[1] >= 2000  # oldest batches shed, counted
    first = inbox.drain(250)
    assert sum(len(it[2]) for it in first) == 300 and first[0][2][0] > 0  # whole batches, oldest first
    rest = inbox.drain()
    assert rest[-1] == ("notice", "kept", T0) and len(inbox) == 0
    assert inbox.dropped[1] + 300 + sum(len(it[2]) for it in rest if it[0] == "msgs") == 3000

    app = DashboardApp(DashboardModel(), publisher=[].append, start_worker=False, max_messages_per_tick=1000)
    app.inbox.put_messages(1, [msg(Domain.MARKET_DATA, i, V2Reserves(
        pool=V2_POOL, block_number=i, log_index=0, reserve0=i, reserve1=i)) for i in range(1, 1001)], T0)
    app.inbox.put_messages(1, [msg(Domain.MARKET_DATA, 1001, V2Reserves(
        pool=V2_POOL, block_number=1001, log_index=0, reserve0=1, reserve1=1))], T0)

    async def scenario(pilot: Pilot) -> None:
        app.tick()
        assert app.model.messages in (1000, 1001)  # the timer may have ticked first
        app.tick()
        assert app.model.messages == 1001

    run(app, scenario)


BIG = 1796587238616241000  # signal ids are 19 digits in a live run


def test_tables_follow_the_newest_rows_until_the_user_moves_and_show_short_ids() -> None:
    app = make_app()

    async def scenario(pilot: Pilot) -> None:
        app.inbox.put_messages(2, [signal_msg(1, BIG + 1)], T0)
        await settle(pilot, app)
        table = app.query_one("#signals", DataTable)
        for i in range(2, 60):  # new signals keep arriving
            app.inbox.put_messages(2, [signal_msg(i, BIG + i)], T0)
            if i % 10 == 0:
                await settle(pilot, app)
        await settle(pilot, app)
        keys = [r.key.value for r in table.ordered_rows]
        assert keys[0] == f"sig-{BIG + 59}"  # newest first
        assert table.cursor_row == 0 and table.scroll_y == 0, "the table no longer follows the newest rows"
        assert cells(app, "signals")[0][2] == "…241059"  # a short id, the full one in the inspector
        # the user picks a row: it stays under the cursor while new rows arrive
        table.move_cursor(row=keys.index(f"sig-{BIG + 30}"))
        for i in range(60, 70):
            app.inbox.put_messages(2, [signal_msg(i, BIG + i)], T0)
        await settle(pilot, app)
        keys = [r.key.value for r in table.ordered_rows]
        assert keys[table.cursor_row] == f"sig-{BIG + 30}"

    run(app, scenario)


def test_amounts_carry_symbols_and_the_tracer_labels_each_net() -> None:
    from market.display import PoolInfo, Registry, TokenInfo
    from protocol.ids import TokenId

    reg = Registry(tokens={int(T.WETH_ID): TokenInfo(symbol="WETH", decimals=18),
                           int(TokenId.of(1, T.USDC)): TokenInfo(symbol="USDC", decimals=6)},
                   pools={(1, "0x" + "22" * 20): PoolInfo(venue="uniswap_v3", fee_pips=500)})
    app = DashboardApp(DashboardModel(), publisher=[].append, start_worker=False, sender="dashboard@test",
                       refresh_interval=0.05, registry=reg)

    async def scenario(pilot: Pilot) -> None:
        feed(app)
        await settle(pilot, app)
        market = {r[0]: r for r in cells(app, "market")}
        assert "WETH/USDC 0.05% V3 (uniswap_v3)" in market, market
        assert market["WETH/USDC 0.05% V3 (uniswap_v3)"][1].endswith(" per WETH")  # quote per base
        exe = dict(zip(views.EXECUTION_COLUMNS, cells(app, "execution")[0]))
        assert exe["realized gross"] == "0.000000 WETH" and exe["net realized"].endswith(" WETH")
        app.select_signal(777)
        await pilot.pause()
        tracer = text_of(app, "tracer")
        for needle in ("predicted at detection   net", "re-validated (executor)  gross", "realized on chain        net",
                       "<- authoritative"):
            assert needle in tracer, needle
        assert tracer.index("detected") < tracer.index("started") < tracer.index("result")
        assert "realized net" in text_of(app, "pnl") and " WETH" in text_of(app, "pnl")

    run(app, scenario)
