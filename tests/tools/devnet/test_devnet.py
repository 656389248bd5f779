"""The devnet: anvil + the official Uniswap V2/V3 bytecode, driven through tools.devnet."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from fractions import Fraction

import pytest
import trio

from chain.addresses import (
    UNISWAP_V2_INIT_CODE_HASH,
    UNISWAP_V3_INIT_CODE_HASH,
    v2_pair_address,
    v3_pool_address,
)
from chain.deployment import DeploymentFile, load_deployment
from chain.rpc import HttpRpc, RpcError, SyncHttpRpc
from tools.devnet import actions, artifacts
from tools.devnet.actions import Tx, TxFailed, v2_amount_out
from tools.devnet.deploy import DEFAULT_SPEC
from tools.devnet.paths import REPO_ROOT

WETH = 10**18


def _pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def _wait_dead(pids: list[int], timeout: float = 5.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if _pid_alive(p)]
        if not alive:
            return []
        time.sleep(0.05)
    return [p for p in pids if _pid_alive(p)]


# -- deployment -----------------------------------------------------------------------------------
def test_every_contract_has_code(devnet):
    d, c = devnet.deployment, devnet.client
    addresses = [t.address for t in d.tokens] + [p.address for p in d.pools]
    addresses += [a for v in d.v2 for a in (v.factory, v.router)]
    addresses += [d.v3.factory, d.v3.position_manager, d.v3.swap_router, d.v3.quoter_v2]
    assert len(set(addresses)) == len(addresses) == 3 + 15 + 4 + 4
    for addr in addresses:
        assert len(c.code(addr)) > 0, addr
    assert c.chain_id() == d.chain_id == 31337
    for tok in d.tokens:
        symbol, decimals = c.call_many([("DevToken", tok.address, "symbol", ()),
                                        ("DevToken", tok.address, "decimals", ())])
        assert (symbol[0], decimals[0]) == (tok.symbol, tok.decimals)
    assert {t.symbol: t.decimals for t in d.tokens} == {"WETH": 18, "USDC": 6, "DAI": 18}
    # the periphery is bound to the right contracts
    for v in d.v2:
        assert c.call_fn("UniswapV2Router02", v.router, "factory")[0].lower() == v.factory.lower()
        assert c.call_fn("UniswapV2Router02", v.router, "WETH")[0].lower() == d.weth.lower()
    assert c.call_fn("QuoterV2", d.v3.quoter_v2, "factory")[0].lower() == d.v3.factory.lower()


def test_deployment_file_roundtrip(devnet, tmp_path):
    d = devnet.deployment
    path = DeploymentFile(chains=(d,), pids=(devnet.anvil.pid,)).save(tmp_path / "dep.json")
    loaded = load_deployment(path)
    assert loaded.chain() == d
    assert loaded.chain(31337).pool("uniswap_v3", "WETH", "USDC", 500).tick_spacing == 10
    raw = json.loads(path.read_text())
    assert raw["format"] == "alphapulse-devnet/1" and raw["pids"] == [devnet.anvil.pid]
    for p in d.pools:  # token0 < token1 as the contracts sort them
        assert int(p.token0, 16) < int(p.token1, 16)


def test_v2_reserves_match_liquidity_added(devnet):
    d, c = devnet.deployment, devnet.client
    for venue, pairs in DEFAULT_SPEC.v2:
        for ps in pairs:
            base, quote = d.token(ps.base), d.token(ps.quote)
            amount_base = int(Fraction(ps.base_amount) * 10**base.decimals)
            amount_quote = int(Fraction(ps.base_amount) * Fraction(ps.price) * 10**quote.decimals)
            pool = d.pool(venue, ps.base, ps.quote)
            r0, r1, _ = c.v2_reserves(pool)
            expected = (amount_base, amount_quote) if pool.token0 == base.address else (amount_quote, amount_base)
            assert (r0, r1) == expected, pool.label
    a = c.pool_price(d.pool("uniswap_v2_a", "WETH", "USDC"))
    b = c.pool_price(d.pool("uniswap_v2_b", "WETH", "USDC"))
    assert a == 2000 and b == 2016  # 0.8 % apart


def test_pool_addresses_match_factories(devnet):
    """The CREATE2 addresses from the init-code hashes are the factories' own answers."""
    d, c = devnet.deployment, devnet.client
    assert artifacts.load("UniswapV2Pair").init_code_hash == UNISWAP_V2_INIT_CODE_HASH
    assert artifacts.load("UniswapV3Pool").init_code_hash == UNISWAP_V3_INIT_CODE_HASH
    for p in d.pools_of(kind="v2"):
        factory = d.v2_venue(p.venue).factory
        assert c.v2_get_pair(p.venue, p.token0, p.token1) == p.address
        assert v2_pair_address(factory, p.token1, p.token0) == p.address
    for p in d.pools_of(kind="v3"):
        assert c.v3_get_pool(p.token0, p.token1, p.fee) == p.address
        assert v3_pool_address(d.v3.factory, p.token1, p.token0, p.fee) == p.address
    assert {p.fee for p in d.pools_of(kind="v3")} == {500, 3000, 10000}


def test_v3_pools_have_several_positions(devnet):
    d, c = devnet.deployment, devnet.client
    for p in d.pools_of(kind="v3"):
        ticks = c.v3_initialized_ticks(p)
        assert len(ticks) == 8, p.label  # 4 positions, distinct ranges
        assert sum(t.liquidity_net for t in ticks.values()) == 0
        slot0 = c.v3_slot0(p)
        active = sum(t.liquidity_net for k, t in ticks.items() if k <= slot0.tick)
        assert active == c.v3_liquidity(p) > 0
        assert all(k % p.tick_spacing == 0 for k in ticks)


# -- swaps and quotes -----------------------------------------------------------------------------
@pytest.mark.parametrize("venue", ["uniswap_v2_a", "uniswap_v2_b"])
def test_v2_swap_matches_get_amounts_out(devnet_snapshot, venue):
    d, c = devnet_snapshot.deployment, devnet_snapshot.client
    trader = d.funded_accounts[0]
    pool = d.pool(venue, "WETH", "USDC")
    r0, r1, _ = c.v2_reserves(pool)
    weth_is_0 = pool.token0 == d.weth
    amount_in = 5 * WETH
    amounts = c.v2_amounts_out(venue, amount_in, ["WETH", "USDC"])
    r_in, r_out = (r0, r1) if weth_is_0 else (r1, r0)
    assert amounts == [amount_in, v2_amount_out(amount_in, r_in, r_out)]
    usdc_before = c.balance(trader, "USDC")
    res = c.v2_swap_exact_in(venue, trader, amount_in, ["WETH", "USDC"], min_out=amounts[-1])
    assert res.amount_out == amounts[-1]
    assert c.balance(trader, "USDC") - usdc_before == amounts[-1]
    n0, n1, _ = c.v2_reserves(pool)
    if weth_is_0:
        assert (n0, n1) == (r0 + amount_in, r1 - amounts[-1])
    else:
        assert (n0, n1) == (r0 - amounts[-1], r1 + amount_in)


def test_v2_multihop_and_liquidity(devnet_snapshot):
    d, c = devnet_snapshot.deployment, devnet_snapshot.client
    trader = d.funded_accounts[1]
    path = ["WETH", "USDC", "DAI", "WETH"]  # a triangular cycle on one venue
    amounts = c.v2_amounts_out("uniswap_v2_b", WETH, path)
    res = c.v2_swap_exact_in("uniswap_v2_b", trader, WETH, path)
    assert res.amount_out == amounts[-1] and len(amounts) == 4
    added = c.v2_add_liquidity("uniswap_v2_a", trader, "DAI", "USDC", 1000 * 10**18, 1000 * 10**6)
    assert added.liquidity > 0 and {added.amount0, added.amount1} == {1000 * 10**18, 1000 * 10**6}
    pool = d.pool("uniswap_v2_a", "DAI", "USDC")
    assert c.v2_lp_balance(pool, trader) == added.liquidity
    removed = c.v2_remove_liquidity("uniswap_v2_a", trader, "DAI", "USDC", added.liquidity)
    assert abs(removed.amount0 - added.amount0) <= added.amount0 // 10**6 + 1
    assert c.v2_lp_balance(pool, trader) == 0


@pytest.mark.parametrize("fee", [500, 3000, 10000])
def test_v3_quoter_matches_swap(devnet_snapshot, fee):
    d, c = devnet_snapshot.deployment, devnet_snapshot.client
    trader = d.funded_accounts[0]
    pool = d.pool("uniswap_v3", "WETH", "USDC", fee)
    before = c.v3_slot0(pool)
    # big enough to leave the narrow position's range: crosses initialized ticks
    amount_in = 150 * WETH
    quote = c.v3_quote_exact_in("WETH", "USDC", fee, amount_in)
    res = c.v3_swap_exact_in(trader, "WETH", "USDC", fee, amount_in, min_out=quote.amount_out)
    after = c.v3_slot0(pool)
    assert res.amount_out == quote.amount_out > 0
    assert after.sqrt_price_x96 == quote.sqrt_price_x96_after[0] != before.sqrt_price_x96
    assert quote.initialized_ticks_crossed[0] >= 1
    # and back the other way, USDC -> WETH
    q2 = c.v3_quote_exact_in("USDC", "WETH", fee, res.amount_out)
    r2 = c.v3_swap_exact_in(trader, "USDC", "WETH", fee, res.amount_out)
    assert r2.amount_out == q2.amount_out < amount_in


def test_v3_multihop_quote_and_mint_burn(devnet_snapshot):
    d, c = devnet_snapshot.deployment, devnet_snapshot.client
    trader = d.funded_accounts[1]
    q = c.v3_quote_exact_in_path(["WETH", "DAI", "USDC"], [500, 3000], WETH)
    assert len(q.sqrt_price_x96_after) == 2 and q.amount_out > 1900 * 10**6
    pool = d.pool("uniswap_v3", "DAI", "USDC", 500)
    tick = c.v3_slot0(pool).tick
    lo, hi = actions.usable_tick(tick - 100, 10), actions.usable_tick(tick + 100, 10)
    liq_before = c.v3_liquidity(pool)
    pos = c.v3_mint(trader, "DAI", "USDC", 500, lo, hi, 10_000 * 10**18, 10_000 * 10**6)
    assert pos.liquidity > 0 and c.v3_liquidity(pool) == liq_before + pos.liquidity
    assert c.v3_position(pos.token_id)["liquidity"] == pos.liquidity
    got0, got1 = c.v3_burn(trader, pos.token_id)
    assert c.v3_liquidity(pool) == liq_before
    assert pos.amount0 - got0 <= 1 and pos.amount1 - got1 <= 1  # rounding favours the pool


def test_failed_transaction_reports_reason(devnet_snapshot):
    d, c = devnet_snapshot.deployment, devnet_snapshot.client
    trader = d.funded_accounts[0]
    amounts = c.v2_amounts_out("uniswap_v2_a", WETH, ["WETH", "USDC"])
    with pytest.raises(TxFailed, match="INSUFFICIENT_OUTPUT_AMOUNT"):
        c.v2_swap_exact_in("uniswap_v2_a", trader, WETH, ["WETH", "USDC"], min_out=amounts[-1] + 1)
    with pytest.raises(RpcError) as err:
        c.rpc.call("no_such_method")
    assert err.value.code == -32601


# -- chain control --------------------------------------------------------------------------------
def test_snapshot_revert_and_mine(devnet):
    d, c = devnet.deployment, devnet.client
    pool = d.pool("uniswap_v2_a", "WETH", "DAI")
    reserves = c.v2_reserves(pool)
    head = c.block_number()
    snap = c.snapshot()
    c.v2_swap_exact_in("uniswap_v2_a", d.funded_accounts[0], WETH, ["WETH", "DAI"])
    assert c.mine(3) == head + 4
    assert c.v2_reserves(pool) != reserves
    assert c.revert(snap)
    assert c.block_number() == head and c.v2_reserves(pool) == reserves


def test_reorg_replaces_blocks_and_drops_transactions(devnet_snapshot):
    d, c = devnet_snapshot.deployment, devnet_snapshot.client
    trader = d.funded_accounts[0]
    pool = d.pool("uniswap_v2_a", "WETH", "USDC")
    c.mine(2)
    reserves = c.v2_reserves(pool)
    swap = c.v2_swap_exact_in("uniswap_v2_a", trader, 2 * WETH, ["WETH", "USDC"])
    head = c.block_number()
    assert swap.receipt.block_number == head
    # reorg the last 2 blocks; the new branch carries a different transaction (a transfer)
    data = artifacts.load("DevToken").encode("transfer", d.deployer, 12345)
    out = c.reorg(2, [(Tx(trader, d.token("USDC").address, data, gas=100_000), 1)])
    assert out["head"] == head
    # the head block's contents changed, so its hash must; the replaced empty block below it may
    # come out identical (same parent, no transactions, same wall-clock second), so no claim on it
    assert out["old"][head] != out["new"][head]
    assert c.get_block(head)["hash"] == out["new"][head]
    assert c.rpc.call("eth_getTransactionReceipt", [swap.receipt.tx_hash]) is None
    assert c.v2_reserves(pool)[:2] == reserves[:2]
    new_block = c.get_block(head, full=True)
    assert len(new_block["transactions"]) == 1
    assert new_block["transactions"][0]["to"].lower() == d.token("USDC").address.lower()
    # rollback removes blocks outright
    assert c.rollback(1) == head - 1


# -- async client under trio ----------------------------------------------------------------------
async def test_async_rpc_under_trio(devnet):
    async with HttpRpc(devnet.deployment.rpc_url) as rpc:
        assert int(await rpc.call("eth_chainId"), 16) == 31337
        results = await rpc.batch([("eth_blockNumber", []), ("no_such_method", [])], return_errors=True)
        assert int(results[0], 16) >= devnet.deployment.deploy_block
        assert isinstance(results[1], RpcError) and results[1].code == -32601
        with trio.fail_after(5):
            await rpc.call("eth_gasPrice")


# -- processes ------------------------------------------------------------------------------------
def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_cli_two_chains_then_sigterm_leaves_no_anvil(tmp_path):
    out = tmp_path / "deployment.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.cli", "devnet", "--chains", "2", "--out", str(out)],
        cwd=REPO_ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 40
        while not out.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no deployment file"
            time.sleep(0.05)
        dep = load_deployment(out)
        assert sorted(c.chain_id for c in dep.chains) == [31337, 31338]
        assert len(set(dep.pids)) == 2 and [c.anvil_pid for c in dep.chains] == list(dep.pids)
        assert len({c.rpc_url for c in dep.chains}) == 2
        for chain in dep.chains:
            with SyncHttpRpc(chain.rpc_url) as rpc:
                assert int(rpc.call("eth_chainId"), 16) == chain.chain_id
                assert rpc.call("eth_getCode", [chain.v3.quoter_v2, "latest"]) != "0x"
        assert all(_pid_alive(p) for p in dep.pids)
        # Two chains that behave like two chains: a 2 s and a 250 ms block time, the same tokens and
        # pairs (symbols; each chain its own contracts), WETH priced 1.5 % higher on the second chain.
        a, b = dep.chains
        assert (a.block_time, b.block_time) == (2.0, 0.25)
        assert [t.symbol for t in a.tokens] == [t.symbol for t in b.tokens]
        assert [p.label for p in a.pools] == [p.label for p in b.pools]
        heads, spans = [], []
        for chain in (a, b):
            with actions.DevnetClient(chain) as client:
                h0, t0 = client.block_number(), time.monotonic()
                time.sleep(1.0)
                heads.append(client.block_number() - h0)
                spans.append(time.monotonic() - t0)
        # a window that a loaded machine stretches past 1 s lets the 2 s chain mine one more block per 2 s
        assert heads[0] <= 1 + int(spans[0] / 2.0) and heads[1] >= 3, (heads, spans)
        def weth_price(client, pool):
            return client.pool_price(pool) if pool.symbol0 == "WETH" else 1 / client.pool_price(pool)

        with actions.DevnetClient(a) as ca, actions.DevnetClient(b) as cb:
            for pa, pb in zip(a.pools, b.pools):
                if "WETH" in (pa.symbol0, pa.symbol1):
                    assert weth_price(cb, pb) / weth_price(ca, pa) == pytest.approx(1.015, rel=1e-3), pa.label
                else:
                    assert cb.pool_price(pb) == ca.pool_price(pa)
    finally:
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 0, stderr
    assert "uniswap_v3:WETH/USDC@0.05%" in stdout and "SIGTERM" in stderr
    assert _wait_dead(list(dep.pids)) == []


def test_anvil_dies_with_a_killed_parent(tmp_path):
    """PR_SET_PDEATHSIG: SIGKILL the Python process that started anvil; anvil goes too."""
    script = textwrap.dedent("""
        import sys, time
        from tools.devnet.anvil import AnvilProcess
        node = AnvilProcess(chain_id=4242).start()
        print(node.pid, flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO_ROOT, env=_env(),
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        pid = int(proc.stdout.readline())
        assert _pid_alive(pid)
    finally:
        proc.kill()
        proc.wait()
    assert _wait_dead([pid]) == []


def test_cli_without_node_modules_fails_clearly(monkeypatch, tmp_path, capsys):
    from tools.devnet import cli

    monkeypatch.setenv("ALPHAPULSE_NODE_MODULES", str(tmp_path / "missing"))
    assert cli.main(["--out", str(tmp_path / "d.json")]) == 2
    err = capsys.readouterr().err
    assert "./run devnet" in err and "npm install" in err
    assert not (tmp_path / "d.json").exists()


def test_anvil_process_context_manager():
    from tools.devnet.anvil import AnvilProcess

    with AnvilProcess(chain_id=777, block_time=1) as node:
        pid = node.pid
        with node.rpc() as rpc:
            assert int(rpc.call("eth_chainId"), 16) == 777
            assert rpc.call("anvil_getAutomine") is False
    assert not node.is_running() and not _pid_alive(pid)
    node.stop()  # idempotent


async def test_websocket_new_heads_subscription(devnet):
    """anvil serves WebSocket JSON-RPC on the same port: eth_subscribe works with trio-websocket."""
    from trio_websocket import open_websocket_url

    with trio.fail_after(10):
        async with open_websocket_url(devnet.deployment.ws_url) as ws:
            await ws.send_message(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe",
                                              "params": ["newHeads"]}))
            sub = json.loads(await ws.get_message())["result"]
            async with HttpRpc(devnet.deployment.rpc_url) as rpc:
                await rpc.call("anvil_mine", ["0x1"])
                head = int(await rpc.call("eth_blockNumber"), 16)
            note = json.loads(await ws.get_message())
            assert note["params"]["subscription"] == sub
            assert int(note["params"]["result"]["number"], 16) == head


# -- command line choices and per-chain markets (no node) -----------------------------------------
def test_block_time_choices():
    from tools.devnet.cli import chain_block_times

    assert chain_block_times(1) == [None]
    assert chain_block_times(2) == [2.0, 0.25]
    assert chain_block_times(3) == [2.0, 0.25, 0.25]
    assert chain_block_times(2, automine=True) == [None, None]
    assert chain_block_times(2, block_time=1.0) == [1.0, 1.0]
    assert chain_block_times(2, block_times="0.5,3") == [0.5, 3.0]
    for kw, msg in (({"block_times": "1"}, "1 value(s) for 2 chain(s)"),
                    ({"block_times": "1,x"}, "not a comma-separated list"),
                    ({"block_times": "1,0"}, "must be > 0"),
                    ({"automine": True, "block_time": 1.0}, "give one of --block-time, --automine")):
        with pytest.raises(ValueError, match=re.escape(msg)):
            chain_block_times(2, **kw)


def test_chain_specs_differ_only_in_weth_prices():
    from tools.devnet.deploy import chain_spec

    a, b = chain_spec(0), chain_spec(1)
    assert a is DEFAULT_SPEC and a.tokens == b.tokens
    for pa, pb in zip(a.v3 + a.v4, b.v3 + b.v4):
        assert (pa.base, pa.quote, pa.fee, pa.positions) == (pb.base, pb.quote, pb.fee, pb.positions)
        want = Fraction(pa.price) * Fraction("1.015") if pa.base == "WETH" else Fraction(pa.price)
        assert Fraction(pb.price) == want
