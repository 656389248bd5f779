"""Pre-trade limits in the executor config: parsing and the per-signal check (sans-IO)."""

from __future__ import annotations

import pytest

from execution.config import ConfigError, config_from_dict
from execution.executor import pre_trade_rejection
from execution.validate import Signal
from protocol import Message, PoolId, TokenId
from protocol.signals import ArbitragePath, Economics, Hop, SignalIdentity

WETH = "0x" + "c0" * 20
USDC = "0x" + "a0" * 20
BASE = {"executor": {"chain_id": 1, "rpc_url": "http://127.0.0.1:1", "contract": "0x" + "11" * 20,
                     "gas_token": WETH},
        "keystore": {"path": "k.json", "password_env": "X"}}


def _signal(amount_in: int) -> Signal:
    pool = PoolId.of(1, 1, 1, "0x" + "22" * 20, WETH, USDC)
    hops = (Hop(pool=pool, venue_kind=1, token_in=bytes.fromhex("c0" * 20), token_out=bytes.fromhex("a0" * 20),
                amount_in=amount_in, amount_out=5),
            Hop(pool=pool, venue_kind=1, token_in=bytes.fromhex("a0" * 20), token_out=bytes.fromhex("c0" * 20),
                amount_in=5, amount_out=amount_in + 1))
    msg = Message(domain=2, tlvs=(
        SignalIdentity(signal_id=1, strategy_id=1, kind=1, confidence_bps=0, chain_id=1, block_number=1, strategy="s"),
        Economics(profit_token=TokenId.of(1, WETH), gross_profit=1, gas_cost=0, flash_fee=0, slippage_allowance=0,
                  net_profit=1, gas_units=0, gas_price_wei=0),
        ArbitragePath(hops=hops)))
    return Signal.from_message(msg)


def test_limits_parse_and_reject_above_the_cap_only() -> None:
    cfg = config_from_dict({**BASE, "limits": {"max_amount_in": {WETH: 1000}, "max_gas_price_wei": 7}})
    assert cfg.limits.max_amount_in == {TokenId.of(1, WETH): 1000} and cfg.limits.max_gas_price_wei == 7
    assert pre_trade_rejection(_signal(1000), cfg) is None
    reason = pre_trade_rejection(_signal(1001), cfg)
    assert reason is not None and "1001" in reason and "1000" in reason


def test_no_limits_configured_rejects_nothing() -> None:
    assert pre_trade_rejection(_signal(10**30), config_from_dict(BASE)) is None


@pytest.mark.parametrize("limits", [{"max_amount_in": {WETH: 1.5}}, {"max_amount_in": 5}, {"max_amount": {}},
                                    {"max_gas_price_wei": "1"}])
def test_bad_limits_are_config_errors(limits: dict) -> None:
    with pytest.raises(ConfigError):
        config_from_dict({**BASE, "limits": limits})
