"""The executor's sans-IO parts: configuration, lifecycle table, emergency-stop scopes, fees, nonces."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from execution.config import ConfigError, config_from_dict, load_config
from execution.lifecycle import ALLOWED, Attempt, HaltState, LifecycleError, SignalExecution, Stage
from execution.store import ExecutorStore, NonceTracker
from execution.validate import Fees, choose_fees, choose_tip
from protocol.execution import Outcome, SubmissionMode
from protocol.system import EmergencyStop, Resume, StopScope

A = "0x" + "11" * 20


def doc(**over: object) -> dict:
    d: dict = {
        "executor": {"chain_id": 31337, "rpc_url": "http://127.0.0.1:8545", "contract": A, "gas_token": A},
        "keystore": {"path": "ks.json", "password_env": "PW"},
    }
    d.update(over)
    return d


def test_minimal_config_and_defaults() -> None:
    c = config_from_dict(doc())
    assert c.mode == "shadow" and c.gas.fee_bump_bps >= 1000 and c.validation.onchain_min_profit_bps == 10_000


def test_example_in_the_docstring_parses(tmp_path: Path) -> None:
    import execution.config as mod

    text = mod.__doc__.split("::\n", 1)[1]
    text = "\n".join(line[4:] for line in text.splitlines()).replace('"0x..."', f'"{A}"').replace(
        '"0x<usdc>"', f'"{A}"')
    text = text.replace('password_file = "var/executor/password"   # or: password_env = "ALPHAPULSE_KEYSTORE_PASSWORD"',
                        'password_file = "var/executor/password"')
    p = tmp_path / "x.toml"
    p.write_text(text)
    c = load_config(p)
    assert c.builders[0].call_bundle and c.factories and c.tip.policy == "fixed"
    assert c.cross_chain is not None and [x.chain_id for x in c.cross_chain.chains] == [31337, 31338]


@pytest.mark.parametrize("bad, words", [
    (doc(executor={"chain_id": 1, "rpc_url": "u", "contract": A, "gas_token": A, "typo": 1}), "unknown key 'typo'"),
    (doc(gas={"max_fee_per_gas": 1.5}), "must be an integer"),
    (doc(gas={"fee_bump_bps": 500}), "fee_bump_bps"),
    (doc(executor={"chain_id": 1, "rpc_url": "u", "contract": A, "gas_token": A, "mode": "yolo"}), "mode"),
    (doc(executor={"chain_id": 1, "rpc_url": "u", "contract": A, "gas_token": A, "mode": "private"}), "builders"),
    (doc(keystore={"path": "k", "password_file": "f", "password_env": "E"}), "exactly one"),
    (doc(keystore={"path": "k", "password_env": "E", "private_key": "x"}), "secrets do not belong"),
    (doc(signer={"pk": "0x" + "ab" * 32}), "plaintext private key"),
    (doc(builders=[{"name": "b", "url": "ab" * 32}]), "plaintext private key"),
    (doc(venues=[{"venue": "NOPE", "factory": A}]), "unknown venue"),
])
def test_bad_configs_are_refused(bad: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words.replace("(", r"\(")) as exc:
        config_from_dict(bad)
    assert "ab" * 32 not in str(exc.value)  # a key is never echoed


def test_private_timeout_is_not_mistaken_for_a_secret() -> None:
    c = config_from_dict(doc(submission={"private_timeout_s": 1.0, "private_blocks": 3}))
    assert c.submission.private_blocks == 3


def _ex() -> SignalExecution:
    return SignalExecution(signal_id=1, chain_id=1, strategy_id=1, profit_token=5, mode=SubmissionMode.PUBLIC)


def _attempt(nonce: int = 3) -> Attempt:
    return Attempt(tx_hash=bytes(32), nonce=nonce, max_fee_per_gas=2, max_priority_fee_per_gas=1, gas_limit=9)


def _drive(stage: Stage) -> SignalExecution:
    ex = _ex()
    if stage in (Stage.VALIDATED, Stage.SIMULATED, Stage.SUBMITTED):
        ex.validated(10)
    if stage in (Stage.SIMULATED, Stage.SUBMITTED):
        ex.simulated()
    if stage is Stage.SUBMITTED:
        ex.submitted(_attempt())
    return ex


@pytest.mark.parametrize("stage, outcome", list(itertools.product(
    [Stage.RECEIVED, Stage.VALIDATED, Stage.SIMULATED, Stage.SUBMITTED], list(Outcome))))
def test_every_stage_outcome_pair_follows_the_table(stage: Stage, outcome: Outcome) -> None:
    ex = _drive(stage)
    if outcome in ALLOWED[stage]:
        r = ex.finish(outcome, "why")
        assert r.outcome == outcome and ex.done
        with pytest.raises(LifecycleError):  # exactly one outcome
            ex.finish(outcome, "again")
    else:
        with pytest.raises(LifecycleError):
            ex.finish(outcome, "impossible")


def test_replacement_must_keep_the_nonce() -> None:
    ex = _drive(Stage.SUBMITTED)
    started = ex.submitted(_attempt(3))
    assert started.nonce == 3
    with pytest.raises(LifecycleError):
        ex.submitted(_attempt(4))


def test_halt_scopes_and_resume() -> None:
    h = HaltState()
    h.apply(EmergencyStop(scope=StopScope.CHAIN, scope_value=1, stop_id=7, reason="r", sender="risk"))
    assert h.halting(chain_id=1, strategy_id=9) is not None
    assert h.halting(chain_id=2, strategy_id=9) is None
    h.apply(EmergencyStop(scope=StopScope.STRATEGY, scope_value=9, stop_id=8, reason="r", sender="ops"))
    assert h.halting(chain_id=2, strategy_id=9).sender == "ops"
    line = h.apply(Resume(scope=StopScope.CHAIN, scope_value=1, stop_id=7, reason="ok", sender="ops"))
    assert "from 'ops'" in line and h.halting(chain_id=1, strategy_id=1) is None
    h.apply(EmergencyStop(scope=StopScope.ALL, scope_value=0, stop_id=9, reason="r", sender="x"))
    h.apply(Resume(scope=StopScope.ALL, scope_value=0, stop_id=0, reason="all clear", sender="ops"))
    assert not h.stops


def test_a_stop_of_any_chain_the_path_touches_halts_the_signal() -> None:
    """A cross-chain signal (source chain 1, its second hop's pool on chain 2) is halted by a CHAIN stop of
    either chain, as risk's per-chain breakers (a stalled head, an overdue transfer) mean it."""
    from types import SimpleNamespace

    from execution.core import ExecutorCore
    from execution.validate import Signal
    from protocol.ids import PoolId, TokenId, Venue, VenueKind
    from protocol.signals import ArbitragePath, Economics, Hop, SignalIdentity, SignalKind

    weth, usdc = "0x" + "c0" * 20, "0x" + "a0" * 20

    def hop(chain: int, a: str, b: str) -> Hop:
        pool = PoolId.of(chain, Venue.DEVNET_V3, VenueKind.UNISWAP_V3, "0x" + f"{chain:02x}" * 20, weth, usdc)
        return Hop(pool=pool, venue_kind=int(VenueKind.UNISWAP_V3), token_in=bytes.fromhex(a[2:]),
                   token_out=bytes.fromhex(b[2:]), amount_in=1, amount_out=1)

    sig = Signal(identity=SignalIdentity(signal_id=1, strategy_id=3, kind=int(SignalKind.CROSS_CHAIN),
                                         confidence_bps=1, chain_id=1, block_number=1, strategy="cross_chain"),
                 economics=Economics(profit_token=TokenId.of(1, usdc), gross_profit=0, gas_cost=0, flash_fee=0,
                                     slippage_allowance=0, net_profit=0, gas_units=0, gas_price_wei=0),
                 path=ArbitragePath(hops=(hop(1, usdc, weth), hop(2, weth, usdc))))
    core = SimpleNamespace(halts=HaltState())
    assert ExecutorCore.halted_for(core, sig) is None  # type: ignore[arg-type]
    core.halts.apply(EmergencyStop(scope=StopScope.CHAIN, scope_value=7, stop_id=4, reason="elsewhere", sender="risk"))
    assert ExecutorCore.halted_for(core, sig) is None  # type: ignore[arg-type]
    core.halts.apply(EmergencyStop(scope=StopScope.CHAIN, scope_value=2, stop_id=5, reason="[chain_stall] chain 2",
                                   sender="risk"))
    assert "emergency stop 5 by 'risk'" in ExecutorCore.halted_for(core, sig)  # type: ignore[arg-type,operator]
    core.halts.apply(Resume(scope=StopScope.CHAIN, scope_value=2, stop_id=5, reason="head advanced", sender="risk"))
    assert ExecutorCore.halted_for(core, sig) is None  # type: ignore[arg-type]


def test_fees_tip_policy_and_bump() -> None:
    f = choose_fees(base_fee=10, tip=3, base_fee_multiplier_bps=20_000, cap=1000)
    assert f == Fees(max_fee_per_gas=23, max_priority_fee_per_gas=3)
    b = f.bumped(1000, 1000)
    assert b.max_fee_per_gas * 10 >= 23 * 11 and b.max_priority_fee_per_gas * 10 >= 3 * 11
    assert f.bumped(1000, 24) is None  # the cap forbids the replacement
    assert choose_tip(policy="fixed", tip_wei=5, share_bps=0, max_tip_wei=4, profit_in_gas_token=0, gas_units=1) == 4
    assert choose_tip(policy="profit_share", tip_wei=1, share_bps=1000, max_tip_wei=10**12,
                      profit_in_gas_token=10**9, gas_units=100) == 10**6


def test_nonce_reconcile_never_goes_below_what_may_land(tmp_path: Path) -> None:
    n = NonceTracker()
    assert n.reconcile(latest=5, pending=7, max_live=None) == 7
    assert n.reconcile(latest=5, pending=5, max_live=9) == 10
    s = ExecutorStore(tmp_path / "s.sqlite")
    s.record_tx(tx_hash="0x1", signal_id=1, nonce=4, raw=b"r", max_fee=2, tip=1, gas_limit=9)
    assert s.max_live_nonce() is None  # never broadcast: not live
    s.mark_public("0x1")
    assert s.max_live_nonce() == 4 and [r.tx_hash for r in s.open_txs()] == ["0x1"]
    s.settle_nonce(4, "0x1")
    assert s.open_txs() == [] and s.all_nonces() == [(4, "0x1", "mined")]
    s.close()


def test_signing_uses_the_native_secp256k1_backend() -> None:
    """eth-account signs through eth-keys, whose backend is coincurve (libsecp256k1) when installed."""
    from eth_account import Account
    from eth_keys.backends import CoinCurveECCBackend, get_backend

    from execution.chain import ChainGateway

    assert isinstance(get_backend(), CoinCurveECCBackend)
    acct = Account.from_key("0x" + "42" * 32)
    gw = ChainGateway(None, acct, chain_id=31337, contract=A)  # type: ignore[arg-type]  # signing needs no RPC
    tx = gw.sign(nonce=3, gas_limit=100_000, max_fee_per_gas=2 * 10**9, max_priority_fee_per_gas=10**9, data=b"\x01")
    assert Account.recover_transaction(tx.raw) == acct.address and tx.nonce == 3


async def test_simulation_and_gas_estimate_overlap_and_the_estimate_is_not_asked_twice(autojump_clock: object) -> None:
    import trio
    import trio.testing

    from execution.core import Estimate, Estimated, Simulate, Simulated, SimulationFailed
    from execution.executor import Executor

    class Gateway:  # a node that cannot meter the simulation's gas (ChainGateway.metered False)
        address = A
        metered = False
        calls: list[str] = []

        async def simulate_execute(self, data: bytes) -> int:
            self.calls.append("call")
            await trio.sleep(1.0)
            if data == b"bad":
                from execution.chain import SimulationReverted
                raise SimulationReverted("eth_call", "K", "reverted")
            return 5

        async def estimate_gas(self, data: bytes) -> int:
            self.calls.append("estimate")
            await trio.sleep(1.0)
            return 123_000

    ex = Executor(config_from_dict(doc()), Gateway(), None, None)  # type: ignore[arg-type]
    run = None
    t0 = trio.current_time()
    assert await ex._do(run, Simulate(b"ok")) == Simulated(5)  # type: ignore[arg-type]
    assert await ex._do(run, Estimate(b"ok")) == Estimated(123_000)  # type: ignore[arg-type]
    assert trio.current_time() - t0 == pytest.approx(1.0)  # one round trip, not two
    assert Gateway.calls == ["call", "estimate"] or Gateway.calls == ["estimate", "call"]
    # a failed simulation ends the run: its estimate is cancelled, not waited for
    t0 = trio.current_time()
    assert isinstance(await ex._do(run, Simulate(b"bad")), SimulationFailed)  # type: ignore[arg-type]
    assert trio.current_time() - t0 == pytest.approx(1.0) and id(run) not in ex._estimates


async def test_a_receipt_watch_polls_when_our_chains_next_block_header_arrives(autojump_clock: object) -> None:
    """A receipt can only appear with a block: a watch waiting between polls looks again as soon as our
    chain's BlockHeader comes on the market-data relay (not after the whole poll interval), and at the
    interval when none comes; a header of another chain does not count."""
    import trio

    from execution.core import Polled, PollReceipts
    from execution.executor import Executor
    from protocol.market import BlockHeader
    from protocol.message import Message

    class Gateway:
        address = A
        asked: list[float] = []

        async def receipt(self, tx_hash: str) -> None:
            self.asked.append(trio.current_time())

    def header(chain_id: int, number: int) -> Message:
        return Message(domain=1, tlvs=(BlockHeader(chain_id=chain_id, number=number, timestamp=1, gas_limit=1,
                                                   gas_used=0, hash=bytes(32), parent_hash=bytes(32), base_fee=1,
                                                   priority_fee=0),))

    ex = Executor(config_from_dict(doc()), Gateway(), None, None)  # type: ignore[arg-type]
    t0 = trio.current_time()
    assert isinstance(await ex._do(None, PollReceipts(("0xab",), 0.0)), Polled)  # at once
    async with trio.open_nursery() as nursery:
        async def blocks() -> None:
            await trio.sleep(0.01)
            ex.on_market_data(header(1, 7))  # another chain's block: not ours
            await trio.sleep(0.01)
            ex.on_market_data(header(31337, 7))
        nursery.start_soon(blocks)
        await ex._do(None, PollReceipts(("0xab",), 5.0))
    assert Gateway.asked[1] - t0 == pytest.approx(0.02)  # with our block, not after 5 s
    await ex._do(None, PollReceipts(("0xab",), 5.0))  # no block since: the whole interval
    assert Gateway.asked[2] - t0 == pytest.approx(5.02)
    ex.on_market_data(header(31337, 8))  # a block came while the run was busy elsewhere: look at once
    await ex._do(None, PollReceipts(("0xab",), 5.0))
    assert Gateway.asked[3] - t0 == pytest.approx(5.02)


def test_a_failed_reason_never_carries_an_endpoint_secret() -> None:
    from execution.executor import Executor

    rpc = "https://user:hunter2@rpc.example:8545/v3/0123456789abcdefKEY?apikey=APIKEY42"
    builder = "https://relay.example/builder/TOKEN-987654"
    cfg = config_from_dict(doc(executor={**doc()["executor"], "rpc_url": rpc},
                               builders=[{"name": "b", "url": builder}]))

    class Gateway:
        address = A

    ex = Executor(cfg, Gateway(), None, None)  # type: ignore[arg-type]
    # e.g. a library error that quotes the URL it was given, escaping to the failure boundary
    reason = ex.failure_reason(RuntimeError(f"cannot reach {rpc}; then {builder} said no (apikey=APIKEY42)"))
    for secret in ("hunter2", "0123456789abcdefKEY", "APIKEY42", "TOKEN-987654", "user:"):
        assert secret not in reason, reason
    assert reason.startswith("RuntimeError: cannot reach https://***@rpc.example:8545/***?***")


def test_the_rpc_url_can_be_named_by_a_file_or_an_environment_variable(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    secret_url = "https://eth.example/v3/" + "ab" * 32  # a provider key: the secret scanner never sees it
    (tmp_path / "url").write_text(secret_url + "\n")
    base = {"chain_id": 1, "contract": A, "gas_token": A}
    c = config_from_dict(doc(executor={**base, "rpc_url_file": str(tmp_path / "url")}))
    assert c.rpc_url == secret_url and c.rpc_url_file == str(tmp_path / "url")
    monkeypatch.setenv("AP_TEST_URL", secret_url)
    assert config_from_dict(doc(executor={**base, "rpc_url_env": "AP_TEST_URL"})).rpc_url == secret_url
    for executor, words in (
            ({**base}, "executor.rpc_url: missing: give rpc_url, rpc_url_file or rpc_url_env"),
            ({**base, "rpc_url_file": str(tmp_path / "absent")}, "executor.rpc_url_file: cannot read the RPC URL"),
            ({**base, "rpc_url_env": "AP_TEST_UNSET_VARIABLE"}, "executor.rpc_url_env: environment variable"),
            ({**base, "rpc_url": "http://x", "rpc_url_env": "AP_TEST_URL"}, "give one of rpc_url or rpc_url_env"),
            ({**base, "rpc_url": "ftp://node"}, "expected an http:// or https:// URL")):
        monkeypatch.delenv("AP_TEST_UNSET_VARIABLE", raising=False)
        with pytest.raises(ConfigError, match=words.replace("(", r"\(")) as exc:
            config_from_dict(doc(executor=executor))
        assert "ab" * 32 not in str(exc.value)
    (tmp_path / "url").write_text("wss://not-http\n")
    with pytest.raises(ConfigError, match="executor.rpc_url_file: expected an http"):
        config_from_dict(doc(executor={**base, "rpc_url_file": str(tmp_path / "url")}))


async def test_a_failed_runs_unsent_nonce_is_given_back_spent_or_its_gap_filled(tmp_path: Path) -> None:
    """The failure boundary's nonce rule (specs/executor-concurrency.md): a nonce the run took and did not
    see broadcast is spent when the chain's pending count is above it, given back when it is the highest
    handed out, else filled by a 0-value self-transfer recorded before it is sent."""
    from types import SimpleNamespace

    from execution.core import CANCEL_GAS, Head
    from execution.executor import Executor

    class Gateway:
        address = A
        pending = 7
        signed: list[dict] = []
        sent: list[bytes] = []

        async def nonce(self, block: str) -> int:
            return self.pending

        def sign(self, **kw: object) -> SimpleNamespace:
            self.signed.append(kw)
            n = int(kw["nonce"])  # type: ignore[call-overload]
            return SimpleNamespace(raw=bytes([n]) * 8, tx_hash=bytes([n]) * 32, **kw)

        async def send_raw(self, raw: bytes) -> None:
            self.sent.append(raw)

    gw = Gateway()
    store = ExecutorStore(tmp_path / "s.sqlite")
    ex = Executor(config_from_dict(doc(executor={"chain_id": 31337, "rpc_url": "http://127.0.0.1:8545",
                                                 "contract": A, "gas_token": A, "mode": "public"})),
                  gw, store, None)  # type: ignore[arg-type]
    ex.core.latest_head = Head(number=5, base_fee=10**9, timestamp=1)
    ex.nonces.reconcile(latest=7, pending=7, max_live=None)
    assert (ex.nonces.take(1), ex.nonces.take(2)) == (7, 8)
    await ex._release_nonces(SimpleNamespace(signal_id=1))  # 8 is out: 7 is a gap
    (fill,) = gw.signed
    assert fill["nonce"] == 7 and fill["to"] == A and fill["data"] == b"" and fill["gas_limit"] == CANCEL_GAS
    assert gw.sent == [bytes([7]) * 8]
    (row,) = store.txs_of_nonce(7)
    assert row.public and row.signal_id == 0 and row.status == "pending"
    assert ex.nonces.held_by(1) == [] and ex.nonces.next == 9
    assert ex.nonces.take(3) == 9
    await ex._release_nonces(SimpleNamespace(signal_id=3))  # the highest: given back, nothing signed
    assert ex.nonces.next == 9 and len(gw.signed) == 1
    assert ex.nonces.take(4) == 9
    gw.pending = 10  # the node has it (our send got through before the error)
    await ex._release_nonces(SimpleNamespace(signal_id=4))
    assert ex.nonces.next == 10 and ex.nonces.held_by(4) == [] and len(gw.signed) == 1
    store.close()
