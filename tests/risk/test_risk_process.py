"""The risk process end to end: real relays (in-process servers on Unix sockets), the risk process
as a real subprocess, a constructed breach, the EmergencyStop received on the execution relay
(latency printed) while the alert webhook still holds its request unanswered, the stop surviving a
SIGKILL + restart, and an operator resume."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
import trio
from relay_testkit import relays_in_process, start_cli_process
from risk_testkit import S, block, risk_toml, wait_until

from protocol.header import Domain
from protocol.system import EmergencyStop, Resume, StopScope
from relays.client import RelayConsumer, RelayProducer
from risk.alerts import AlertSender, payload
from risk.cli import send_resume, send_stop
from risk.config import AlertsConfig


def write_config(d: Path, socks: dict[Domain, str], *, webhook: str = "http://127.0.0.1:9/unreachable-webhook",
                 webhook_timeout_s: float = 0.5) -> Path:
    cfg = d / "risk.toml"
    cfg.write_text(risk_toml(socks, max_gas_wei=100 * S, extra=f"""
[alerts]
webhook_url = "{webhook}"
style = "slack"
timeout_s = {webhook_timeout_s}

[relay_gaps]
grace_s = 2.0
"""))
    return cfg


class RiskProc:
    def __init__(self, d: Path, cfg: Path, state: Path) -> None:
        self.d, self.cfg, self.state = d, cfg, state
        self.n = 0
        self.proc: trio.Process | None = None
        self.log = d / "risk-0.log"

    async def start(self) -> None:
        self.n += 1
        self.log = self.d / f"risk-{self.n}.log"
        self.proc = await start_cli_process(self.log, "risk", "--config", str(self.cfg), "--state", str(self.state))
        with trio.fail_after(20):
            while "risk: watching" not in self.log.read_text():
                assert self.proc.poll() is None, self.log.read_text()
                await trio.sleep(0.02)

    async def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            await self.proc.wait()


class SilentHook:
    """A webhook endpoint that accepts each request and answers nothing while ``holding``; once
    released it drops what it holds and every later connection at once (the alert fails fast)."""

    def __init__(self) -> None:
        self.accepted = 0
        self.holding = True
        self.released = trio.Event()
        self.port = 0

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._conn, listeners)

    async def _conn(self, stream: trio.SocketStream) -> None:
        self.accepted += 1
        async with stream:
            if self.holding:
                await self.released.wait()

    def release(self) -> None:
        self.holding = False
        self.released.set()


async def next_stop(c: RelayConsumer) -> tuple[EmergencyStop, int]:
    async for msg in c:
        t = msg.find(EmergencyStop)
        if t is not None:
            return t, time.time_ns()
    raise AssertionError("consumer ended")


async def test_breach_publishes_emergency_stop_which_survives_a_restart_until_resumed(short_dir: Path) -> None:
    state = short_dir / "state" / "risk.sqlite"
    hook = SilentHook()
    async with relays_in_process(short_dir) as socks, trio.open_nursery() as hooks:
        await hooks.start(hook.serve)
        # the alert's own timeout is a minute: a stop that waited for the webhook's answer would not come
        url = f"http://127.0.0.1:{hook.port}/silent-webhook"
        risk = RiskProc(short_dir, write_config(short_dir, socks, webhook=url, webhook_timeout_s=60), state)
        try:
            await risk.start()
            async with RelayConsumer.connect(Domain.EXECUTION, socks[Domain.EXECUTION], name="exec-watch") as watch, \
                    RelayProducer.connect(Domain.MARKET_DATA, socks[Domain.MARKET_DATA], source_id=41) as md:
                # normal blocks: no stop
                for n in range(1, 6):
                    await md.publish(block(n, base_fee=30 * S).tlvs)
                await md.flush()
                await trio.sleep(0.3)
                # the breach: base fee + priority above the 100 gwei ceiling
                sent = time.time_ns()
                await md.publish(block(6, base_fee=150 * S).tlvs, event_time_ns=sent, receive_time_ns=sent)
                with trio.fail_after(10):
                    stop, got = await next_stop(watch)
                latency_ms = (got - sent) / 1e6
                print(f"\nbreach -> EmergencyStop on the execution relay: {latency_ms:.2f} ms")
                assert stop.scope == StopScope.CHAIN and stop.scope_value == 1 and stop.stop_id == 1
                assert stop.sender == "risk" and "[gas_price]" in stop.reason and "block 6" in stop.reason
                # the stop was not held up by the alert: it came while the webhook still held the alert's
                # request unanswered (and would for a minute)
                await wait_until(lambda: hook.accepted >= 1, 10)
                assert hook.holding and "alert webhook" not in risk.log.read_text()
                hook.release()  # the webhook drops the request: the failure is logged, the URL redacted
                await wait_until(lambda: f"alert webhook http://127.0.0.1:{hook.port}/*** failed"
                                 in risk.log.read_text(), 10)

                # kill -9 and restart: the stop is restored (re-asserted with its id), not tripped anew
                await risk.kill9()
                await risk.start()
                with trio.fail_after(10):
                    again, _ = await next_stop(watch)
                assert again.stop_id == 1
                assert "restored 1 tripped stop" in risk.log.read_text()
                await md.publish(block(7, base_fee=200 * S).tlvs)
                await md.flush()
                await trio.sleep(0.4)
                assert risk.proc is not None and risk.proc.poll() is None

                # an operator resume is applied, logged and persisted
                with trio.fail_after(10):
                    await send_resume(socks[Domain.EXECUTION], "chain", 1, "gas normal again", "ops:alice")
                await wait_until(lambda: "RESUME by 'ops:alice'" in risk.log.read_text(), 10)
                assert "cleared #1" in risk.log.read_text()
                # re-armed: the next breach trips a new stop
                await md.publish(block(8, base_fee=300 * S).tlvs)
                with trio.fail_after(10):
                    while True:
                        s, _ = await next_stop(watch)
                        if s.sender == "risk":
                            break
                assert s.stop_id == 2

                # an operator stop is reported by risk as a foreign stop
                with trio.fail_after(10):
                    sid = await send_stop(socks[Domain.EXECUTION], StopScope.ALL, 0, "maintenance", "ops:bob")
                await wait_until(lambda: f"EmergencyStop #{sid} from 'ops:bob'" in risk.log.read_text(), 10)
        finally:
            await risk.stop()
            hooks.cancel_scope.cancel()
    db = sqlite3.connect(state)
    rows = db.execute("SELECT stop_id, breaker, active, resumed_by, resume_reason FROM trips ORDER BY stop_id").fetchall()
    assert rows == [(1, "gas_price", 0, "ops:alice", "gas normal again"), (2, "gas_price", 1, None, None)]


async def test_alert_payload_styles_and_webhook_failures_are_swallowed() -> None:
    assert payload("discord", "x") == {"content": "x"}
    assert payload("slack", "x") == {"text": "x"}
    assert payload("telegram", "x", "42") == {"chat_id": "42", "text": "x"}
    seen: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        return httpx.Response(500 if b"boom" in request.content else 200)

    sender = AlertSender(AlertsConfig(webhook_url="http://hook.invalid/x", style="telegram", chat_id="42"),
                         transport=httpx.MockTransport(handler))
    async with trio.open_nursery() as n:
        n.start_soon(sender.run)
        sender.offer("boom")
        sender.offer("stop #1")
        await wait_until(lambda: sender.sent + sender.failed >= 2, 5)
        n.cancel_scope.cancel()
    assert sender.failed == 1 and sender.sent == 1
    assert seen[1] == b'{"chat_id":"42","text":"stop #1"}'


async def test_a_failing_webhook_never_logs_its_token(caplog: pytest.LogCaptureFixture) -> None:
    """A non-2xx answer makes httpx quote the URL; the bot token in its path stays out of the log."""
    sender = AlertSender(AlertsConfig(webhook_url="https://api.hook.invalid/botSECRET123/sendMessage",
                                      style="telegram", chat_id="42"),
                         transport=httpx.MockTransport(lambda request: httpx.Response(404)))
    with caplog.at_level(logging.ERROR, logger="risk.alerts"):
        async with trio.open_nursery() as n:
            n.start_soon(sender.run)
            sender.offer("stop #1")
            await wait_until(lambda: sender.failed >= 1, 5)
            n.cancel_scope.cancel()
    assert "HTTPStatusError" in caplog.text and "404" in caplog.text
    assert "SECRET123" not in caplog.text and "api.hook.invalid" in caplog.text


@pytest.mark.parametrize("answer", ["refused", "500"])
async def test_a_webhook_url_with_credentials_is_logged_only_redacted(caplog: pytest.LogCaptureFixture,
                                                                      answer: str) -> None:
    """User info, path token and query token of the webhook URL never reach the log, whether httpx
    quotes the URL (a non-2xx answer) or the transport fails; the log names scheme, host and port
    the one way every URL is redacted (chain.rpc.redact_url)."""
    # blanks and a non-ASCII letter: httpx prints them percent-encoded, which a plain replace would miss
    url = "https://hookuser:pa55 w0rd@hooks.chat.invalid:8443/services/T0AB/B0CD/XyZ secretPärt?token=tok3n Value"

    def handler(request: httpx.Request) -> httpx.Response:
        if answer == "refused":
            raise httpx.ConnectError(f"cannot connect to {request.url}", request=request)
        return httpx.Response(500, request=request)

    sender = AlertSender(AlertsConfig(webhook_url=url, style="slack"), transport=httpx.MockTransport(handler))
    with caplog.at_level(logging.ERROR, logger="risk.alerts"):
        async with trio.open_nursery() as n:
            n.start_soon(sender.run)
            sender.offer("stop #1")
            await wait_until(lambda: sender.failed >= 1, 5)
            n.cancel_scope.cancel()
    assert "alert webhook https://***@hooks.chat.invalid:8443/***?*** failed" in caplog.text
    for secret in ("hookuser", "pa55", "w0rd", "T0AB", "B0CD", "XyZ", "secretP", "tok3n"):
        assert secret not in caplog.text, (secret, caplog.text)


async def test_a_fresh_state_keeps_its_execution_position_across_a_restart_before_the_first_result(
        short_dir: Path) -> None:
    """Found by ``alphapulse chaos``: a fresh risk state starts the execution relay from now; killed before
    the first result it restarted from a later 'now' and never applied the results published meanwhile."""
    from risk_testkit import result

    from risk.config import load_config
    from risk.process import run
    from risk.state import RiskState

    state = short_dir / "state" / "risk.sqlite"
    async with relays_in_process(short_dir) as socks:
        config = load_config(write_config(short_dir, socks))
        async with trio.open_nursery() as n:  # subscribes, then dies before any execution message
            await n.start(run, config, state)
            n.cancel_scope.cancel()
        async with RelayProducer.connect(Domain.EXECUTION, socks[Domain.EXECUTION], source_id=51) as ex:
            await ex.publish(result(7, outcome=2, gas_used=21_000, gas_price=S).tlvs)  # while risk is down
            await ex.flush()
        async with trio.open_nursery() as n:
            shell = await n.start(run, config, state)
            await wait_until(lambda: shell.state.get("execution_seq") == 1, 5)
            n.cancel_scope.cancel()
    st = RiskState(state)
    try:
        assert st.get("execution_seq") == 1
    finally:
        st.close()


async def next_control(c: RelayConsumer) -> EmergencyStop | Resume:
    async for msg in c:
        t = msg.find(EmergencyStop) or msg.find(Resume)
        if t is not None:
            return t
    raise AssertionError("consumer ended")


async def test_cross_chain_breakers_stop_and_lift_themselves_through_the_relays(short_dir: Path) -> None:
    """The risk process (a real subprocess, real relays): chain 2's head stops -> a CHAIN stop of chain 2 on the
    execution relay, its heads resume -> a Resume of exactly that stop from risk; a bridge transfer overdue -> a
    stop of its destination, the transfer completes -> its Resume. Chain 1 keeps producing and never trips."""
    from risk_testkit import bridge

    from protocol.execution import BridgeTransferState as BT

    state = short_dir / "state" / "risk.sqlite"
    async with relays_in_process(short_dir) as socks:
        cfg = write_config(short_dir, socks)
        cfg.write_text(cfg.read_text().split("[gas_price]")[0] + """
[chain_stall]
chains = { "1" = 0.5, "2" = 0.1 }
multiple = 10.0

[bridge_overdue]
max_transfer_s = 1.0
""")
        risk = RiskProc(short_dir, cfg, state)
        heads = {1: 0, 2: 0}
        running = {1: True, 2: True}
        try:
            await risk.start()
            async with RelayConsumer.connect(Domain.EXECUTION, socks[Domain.EXECUTION], name="exec-watch") as watch, \
                    RelayProducer.connect(Domain.MARKET_DATA, socks[Domain.MARKET_DATA], source_id=41) as md, \
                    RelayProducer.connect(Domain.EXECUTION, socks[Domain.EXECUTION], source_id=42) as ex, \
                    trio.open_nursery() as n:

                async def produce() -> None:
                    while True:
                        for chain in (1, 2):
                            if running[chain]:
                                heads[chain] += 1
                                now = time.time_ns()
                                await md.publish(block(heads[chain], base_fee=S, chain=chain).tlvs,
                                                 event_time_ns=now, receive_time_ns=now)
                        await trio.sleep(0.05)

                n.start_soon(produce)
                await trio.sleep(0.8)  # heads flowing on both chains: nothing trips
                running[2] = False
                with trio.fail_after(10):
                    stop = await next_control(watch)
                assert isinstance(stop, EmergencyStop) and (stop.scope, stop.scope_value) == (StopScope.CHAIN, 2)
                assert "[chain_stall] chain 2 head stalled" in stop.reason and stop.sender == "risk"
                running[2] = True
                with trio.fail_after(10):
                    lifted = await next_control(watch)
                assert isinstance(lifted, Resume) and lifted.stop_id == stop.stop_id and lifted.sender == "risk"
                assert "chain 2 head advanced" in lifted.reason
                await wait_until(lambda: f"CLEARED stop #{stop.stop_id} [chain_stall]" in risk.log.read_text(), 10)

                # a transfer sent 5 s ago (its block time) and not completed: overdue at once
                sent = time.time_ns() - 5 * 10**9
                await ex.publish(bridge(3, BT.SENT, amount=10**9, nonce=7, t_ns=sent).tlvs)
                with trio.fail_after(10):
                    over = await next_control(watch)
                assert isinstance(over, EmergencyStop) and (over.scope, over.scope_value) == (StopScope.CHAIN, 1)
                assert "[bridge_overdue] bridge transfer 3 (chain 2 -> 1" in over.reason
                await ex.publish(bridge(3, BT.COMPLETED, amount=10**9, fee=10, nonce=7, t_ns=time.time_ns()).tlvs)
                with trio.fail_after(10):
                    done = await next_control(watch)
                assert isinstance(done, Resume) and done.stop_id == over.stop_id
                n.cancel_scope.cancel()
            assert "chain 1 head stalled" not in risk.log.read_text()
        finally:
            await risk.stop()
    db = sqlite3.connect(state)
    rows = db.execute("SELECT breaker, active, resumed_by FROM trips ORDER BY stop_id").fetchall()
    assert rows == [("chain_stall", 0, "risk"), ("bridge_overdue", 0, "risk")]
