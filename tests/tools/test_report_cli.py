"""tools.report_cli: history and balance with the quote currency beside the exact integers, from a run's
deployment file (the registry picks the USDC pool) and the books' latest pool prices."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from risk_testkit import ETHER, POOL_V2, USDC, WETH, WETH_ID, S, reserves, result, signal

from chain.deployment import ChainDeployment, Pool, Token, V2Venue, V3Venue, save_deployment
from market.prices import convert_q96
from portfolio.books import Books, open_db
from protocol.header import Domain
from tools.report_cli import balance, history

T0 = 1_700_000_000 * 10**9


def _run(tmp_path: Path) -> tuple[Path, Path, int]:
    """A run with a deployment (chain 1: WETH, USDC and their V2 pool, the risk testkit's) and its books."""
    from eth_utils import to_checksum_address as cs

    a = lambda n: cs(f"0x{n:040x}")  # noqa: E731
    v3 = V3Venue(name="uniswap_v3", factory=a(1), position_manager=a(2), swap_router=a(3), quoter_v2=a(4),
                 init_code_hash="0x" + "00" * 32)
    v2 = V2Venue(name="uniswap_v2", factory=a(5), router=a(6), init_code_hash="0x" + "00" * 32)
    t0, t1 = sorted((cs(WETH), cs(USDC)), key=str.lower)
    dep = ChainDeployment(chain_id=1, rpc_url="http://127.0.0.1:1", ws_url="ws://127.0.0.1:1", deployer=a(7),
                          accounts=(a(7),), tokens=(Token(symbol="WETH", name="W", address=cs(WETH), decimals=18),
                                                    Token(symbol="USDC", name="U", address=cs(USDC), decimals=6)),
                          weth=cs(WETH), v2=(v2,), v3=v3, deploy_block=1,
                          pools=(Pool(address=POOL_V2.address, venue="uniswap_v2", kind="v2", token0=t0, token1=t1,
                                      fee=3000),))
    run = tmp_path / "run"
    (run / "data").mkdir(parents=True)
    save_deployment(run / "deployment.json", [dep])
    b = Books(open_db(run / "data" / "portfolio.sqlite"), {1: (int(WETH_ID), int(WETH_ID))})
    weth0 = POOL_V2.token0 == WETH_ID
    r0, r1 = (1000 * ETHER, 2_000_000 * 10**6) if weth0 else (2_000_000 * 10**6, 1000 * ETHER)
    b.apply(Domain.MARKET_DATA, [reserves(r0, r1, t_ns=T0)._replace(domain_seq=1)])
    b.apply(Domain.SIGNAL, [signal(1, t_ns=T0)._replace(domain_seq=1)])
    b.apply(Domain.EXECUTION, [result(1, profit=3 * 10**16, gas_used=100_000, gas_price=10 * S,
                                      t_ns=T0)._replace(domain_seq=1)])
    price = (r1 << 96) // r0
    b.db.close()
    cfg = run / "configs"
    cfg.mkdir()
    (cfg / "portfolio.toml").write_text(f'[chains."1"]\nvaluation_token = "{WETH}"\nwrapped_native = "{WETH}"\n')
    return run / "data" / "portfolio.sqlite", run, price if weth0 else -price


def test_history_and_balance_in_the_quote_currency(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALPHAPULSE_QUOTE", raising=False)
    db, run, signed_price = _run(tmp_path)
    price, weth0 = abs(signed_price), signed_price > 0
    assert history(["--db", str(db), "--csv"]) == 0
    (row,) = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    net = 3 * 10**16 - 100_000 * 10 * S
    assert int(row["net_value"]) == net
    usd = convert_q96(net, price, weth0)
    assert int(row["net_quote_units"]) == usd and row["net_quote"] == f"{usd // 10**6:,}.{usd % 10**6 // 10**4:02d} USD"
    assert history(["--db", str(db)]) == 0
    table = capsys.readouterr().out
    assert "net USD" in table and row["net_quote"] in table
    assert history(["--db", str(db), "--quote", "none"]) == 0
    assert "USD" not in capsys.readouterr().out

    assert balance(["--db", str(db), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    by_symbol = {b["symbol"]: b for b in out["balances"]}
    assert by_symbol["WETH"]["quote"] == convert_q96(3 * 10**16, price, weth0)
    assert by_symbol["ETH"]["quote"] == convert_q96(-10**15, price, weth0)  # gas, valued as WETH
    assert out["total_quote"] == by_symbol["WETH"]["quote"] + by_symbol["ETH"]["quote"]
    assert balance(["--db", str(db)]) == 0
    text = capsys.readouterr().out
    assert f"= {by_symbol['WETH']['quote_text']}" in text and "total " in text and " USD at the latest" in text
