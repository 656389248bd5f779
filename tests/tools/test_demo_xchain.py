"""``alphapulse demo --chains 2``: the lagging chain's tape and options (no chain), and a short headless run end
to end on two real anvils -- cross-chain opportunities found and traded from inventory, the rebalancer's
transfers through the bridge stand-in, and the books equal to both chains' balances to the wei."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from protocol.ids import PoolId, Venue, VenueKind
from protocol.market import V3Swap
from tools.demo_xchain import PoolTape, XChainOptions, percentile_ms

ROOT = Path(__file__).resolve().parents[2]
USDC, WETH = "0x" + "a0" * 20, "0x" + "c0" * 20
POOL = PoolId.of(31338, Venue.UNISWAP_V3, VenueKind.UNISWAP_V3, "0x" + "22" * 20, USDC, WETH)


def _swap(sqrt_price_x96: int, pool: PoolId = POOL, tx: bytes = bytes(32)) -> V3Swap:
    return V3Swap(pool=pool, block_number=1, log_index=0, tx_hash=tx, amount0=1, amount1=-1,
                  sqrt_price_x96=sqrt_price_x96, liquidity=10**18, tick=0)


def _sqrt(usdc_per_weth: int) -> int:
    """sqrtPriceX96 of a USDC(token0, 6 decimals)/WETH(token1, 18) pool at ``usdc_per_weth``."""
    per_unit = Fraction(10**18, usdc_per_weth * 10**6)  # raw units of token1 per token0
    return int((per_unit * 2**192) ** Fraction(1, 2))


def test_the_tape_keeps_the_lead_pools_price_in_usdc_per_weth_as_seen_on_the_bus() -> None:
    # USDC (6 decimals) is token0: the pool's price is WETH units per USDC unit; the tape turns it into USDC per WETH
    tape = PoolTape(pool=int(POOL), weth_is_token0=False, decimals0=6, decimals1=18)
    sqrt = _sqrt(2000)
    tape.on_records([_swap(sqrt)], now=10.0)
    other = PoolId.of(31337, Venue.UNISWAP_V3, VenueKind.UNISWAP_V3, "0x" + "22" * 20, USDC, WETH)
    tape.on_records([_swap(sqrt // 2, pool=other)], now=11.0)  # another chain's pool: not the lead's
    assert tape.swaps == 1 and tape.mid_at(9.9) is None
    mid = tape.mid_at(12.0)
    assert mid is not None and abs(float(mid) - 2000.0) < 1e-6


def test_the_tape_follows_the_markets_moves_not_our_own_swaps() -> None:
    """Our arbitrage's swap on the lead pool moves the pool but not the tape; the market's next swap moves the
    tape by its own ratio (price after / price before it), from wherever the pool was."""
    tape = PoolTape(pool=int(POOL), weth_is_token0=False, decimals0=6, decimals1=18)
    tape.on_records([_swap(_sqrt(2000))], now=1.0)
    ours = b"\x07" * 32
    tape.ours(ours)
    tape.on_records([_swap(_sqrt(1900), tx=ours)], now=2.0)  # our leg sold WETH: -5 %
    tape.on_records([_swap(_sqrt(1919), tx=b"\x01" * 32)], now=3.0)  # the market: +1 % from there
    assert (tape.swaps, tape.skipped) == (2, 1)
    assert abs(float(tape.last) - 1919) < 1e-6  # type: ignore[arg-type]
    assert tape.mid_at(2.5) == tape.mid_at(1.5)  # our swap left the tape where it was
    assert abs(float(tape.mid_at(3.0)) / float(tape.mid_at(1.5)) - 1.01) < 1e-9  # type: ignore[arg-type]


def test_options_are_checked_in_one_line() -> None:
    with pytest.raises(ValueError, match="1 value"):
        XChainOptions(block_times=(2.0,))
    with pytest.raises(ValueError, match="> 0 seconds"):
        XChainOptions(block_times=(2.0, 0.0))
    with pytest.raises(ValueError, match="lead chain"):
        XChainOptions(lead=2)
    assert percentile_ms([], 0.5) == "-" and percentile_ms([1_000_000, 3_000_000], 0.5) == "3.0 ms"


def test_the_cli_refuses_chains_2_with_cex_in_one_line() -> None:
    done = subprocess.run([sys.executable, "-m", "tools.cli", "demo", "--chains", "2", "--cex"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--chains 2 runs without --cex and --replay" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.timeout(500)
def test_two_chain_demo_trades_across_chains_and_the_books_equal_both_chains_to_the_wei(tmp_path: Path) -> None:
    """A headless run of 20 s of market (a 2 s and a 0.25 s chain, the bridge completing after 2 s), which starts
    once the chains' price gap at start has its outcome (the executor up, then the strategy: however long a loaded
    machine takes): the summary's figures, and the books' changes equal to what moved on both chains, token by
    token, to the wei."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", ALPHAPULSE_DEMO_DIR=str(tmp_path / "demo"))
    done = subprocess.run(
        [sys.executable, "-m", "tools.cli", "demo", "--chains", "2", "--headless", "--duration", "20",
         "--summary-every", "10", "--bridge-delay", "2", "--warmup", "2", "--settle", "4"],
        # the overall bound only: the run waits on its own conditions (each bounded), its length is the machine's
        # (59 s at load 5; 4 to 6 minutes at load 40 on 2 cores, most of it the processes' start)
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=480)
    out, err = done.stdout, done.stderr
    assert done.returncode == 0, out[-3000:] + err[-3000:]
    # the market waited for the start gap's outcome: the executor was up before the strategy signalled it
    assert "the chains' price gap at start: {" in out, out[-4000:] + err[-3000:]

    def figure(label: str) -> str:
        found = re.search(rf"^{re.escape(label)}\s*:\s*(.*)$", out, re.M)
        assert found, f"{label!r} not in the summary:\n" + out[-4000:]
        return found.group(1)

    # every process of the two-chain system ran: a collector per chain and the bridge relayer among them
    for name in ("collector-31337", "collector-31338", "bridge-relayer", "strategy", "executor", "portfolio", "risk"):
        assert re.search(rf"\] {name}: started pid \d+", err), (name, err[-3000:])
    assert int(figure("real swaps replayed on the devnet").split()[0]) >= 10
    found = int(figure("cross-chain opportunities found"))
    assert found >= 1, out[-4000:]
    outcomes = ast.literal_eval(figure("cross-chain outcomes"))
    assert sum(outcomes.values()) <= found
    # the devnet's 1.5 % gap at start is traded from both contracts' inventory: both legs landed (or one was
    # unwound), and both contracts' tokens moved
    assert outcomes.get("EXECUTED", 0) + outcomes.get("UNWOUND", 0) >= 1, out[-4000:]
    # ... unless the rebalancer brought a chain back: it refills a chain below its floor to its target (the
    # start) from the other chain's surplus, and a donor gives at most its surplus above the target, so after
    # one trade and two rebalances one chain can hold exactly what it started with (the profit on the other)
    rebalanced = int(figure("rebalances (bridge transfers)").split()[0])
    for chain in ("31337", "31338"):
        moved = figure(f"chain {chain} contract inventory").split("; moved ")[1]
        assert moved != "+0.000000 WETH, +0.000000 USDC" or rebalanced >= 2, out[-4000:]
    latency = figure("first leg's log -> both submitted")
    assert re.match(r"p50 [\d.]+ ms  p99 [\d.]+ ms \(n=[1-9]", latency), latency
    assert re.match(r"-?[\d,]+\.\d{6} USDC \(-?\d+ units", figure("cross-chain realized net profit"))
    assert re.match(r"p50 [\d.]+ ms \(eth_blockNumber", figure("one devnet RPC round trip"))
    # the books against both chains, every token the books hold or the chain moved, to the wei
    books = figure("books vs both chains (to the wei)")
    rows = re.findall(r"^  chain (\d+) (\S+)\s+books .*\((-?\d+)\)  chain .*\((-?\d+)\)", out, re.M)
    assert books.startswith("EQUAL"), out[-4000:]
    assert {c for c, *_ in rows} == {"31337", "31338"} and all(b == c for _, _, b, c in rows), rows
    # every config the run wrote passes `alphapulse config check` (the rebalancer's and both collectors' too)
    from tools.config_cli import check

    work = Path(re.search(r"working directory (\S+)", out).group(1))  # type: ignore[union-attr]
    assert check(str(work / "deploy.toml")) == []
    assert {p.name for p in (work / "configs").glob("*.toml")} >= {
        "collector-31337.toml", "collector-31338.toml", "rebalancer.toml", "strategy.toml", "executor.toml"}
