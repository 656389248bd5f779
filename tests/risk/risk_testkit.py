"""Message builders shared by the risk and portfolio tests, and a risk process's configuration."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from relay_testkit import relays_toml

from protocol.execution import (
    NO_NONCE,
    BridgeTransfer,
    BridgeTransferState,
    CexFill,
    ChainLegReport,
    DexLegResult,
    ExecutionResult,
    ExecutionStarted,
    LegReport,
    Outcome,
)
from protocol.header import Domain
from protocol.ids import PoolId, TokenId, Venue, VenueKind
from protocol.market import BlockHeader, Trade, V2Reserves, V3Swap
from protocol.message import Message
from protocol.signals import ArbitragePath, Economics, Hop, SignalIdentity, SignalKind

CHAIN = 1
WETH = "0x" + "c0" * 20
USDC = "0x" + "a0" * 20
WETH_ID = TokenId.of(CHAIN, WETH)
USDC_ID = TokenId.of(CHAIN, USDC)
POOL_V2 = PoolId.of(CHAIN, Venue.UNISWAP_V2, VenueKind.UNISWAP_V2, "0x" + "11" * 20, WETH, USDC)
POOL_V3 = PoolId.of(CHAIN, Venue.UNISWAP_V3, VenueKind.UNISWAP_V3, "0x" + "22" * 20, WETH, USDC)
S = 1_000_000_000
ETHER = 10**18


def result(signal_id: int, *, outcome: int = Outcome.EXECUTED, profit: int = 0, gas_used: int = 0,
           gas_price: int = 0, token: int = WETH_ID, chain: int = CHAIN, expected: int = 0, block: int = 100,
           reason: str = "", seq: int = 0, t_ns: int = 0) -> Message:
    return Message(domain=Domain.EXECUTION, domain_seq=seq, event_time_ns=t_ns, receive_time_ns=t_ns, tlvs=(
        ExecutionResult(signal_id=signal_id, chain_id=chain, outcome=int(outcome), block_number=block,
                        tx_hash=signal_id.to_bytes(32, "big"), gas_used=gas_used, effective_gas_price=gas_price,
                        expected_profit=expected, realized_profit=profit, profit_token=TokenId(token),
                        reason=reason),))


def started(signal_id: int, *, max_fee: int = 10 * S, chain: int = CHAIN, t_ns: int = 0) -> Message:
    return Message(domain=Domain.EXECUTION, event_time_ns=t_ns, receive_time_ns=t_ns, tlvs=(
        ExecutionStarted(signal_id=signal_id, chain_id=chain, mode=1, nonce=signal_id,
                         tx_hash=signal_id.to_bytes(32, "big"), max_fee_per_gas=max_fee,
                         max_priority_fee_per_gas=S, gas_limit=500_000),))


def signal(signal_id: int, *, amount_in: int = ETHER, strategy_id: int = 3, net: int = 10**15,
           t_ns: int = 0) -> Message:
    hops = (
        Hop(pool=POOL_V2, venue_kind=int(VenueKind.UNISWAP_V2), token_in=bytes.fromhex(WETH[2:]),
            token_out=bytes.fromhex(USDC[2:]), amount_in=amount_in, amount_out=2000 * 10**6),
        Hop(pool=POOL_V3, venue_kind=int(VenueKind.UNISWAP_V3), token_in=bytes.fromhex(USDC[2:]),
            token_out=bytes.fromhex(WETH[2:]), amount_in=2000 * 10**6, amount_out=amount_in + net),
    )
    return Message(domain=Domain.SIGNAL, event_time_ns=t_ns, receive_time_ns=t_ns, tlvs=(
        SignalIdentity(signal_id=signal_id, strategy_id=strategy_id, kind=int(SignalKind.TWO_POOL),
                       confidence_bps=9000, chain_id=CHAIN, block_number=99, strategy="two_pool"),
        Economics(profit_token=WETH_ID, gross_profit=net + 10**14, gas_cost=10**14, flash_fee=0,
                  slippage_allowance=0, net_profit=net, gas_units=200_000, gas_price_wei=S),
        ArbitragePath(hops=hops),
    ))


def reserves(r0: int, r1: int, *, pool: int = POOL_V2, t_ns: int = 0, block: int = 100) -> Message:
    return Message(domain=Domain.MARKET_DATA, event_time_ns=t_ns, receive_time_ns=t_ns, tlvs=(
        V2Reserves(pool=PoolId(pool), block_number=block, log_index=0, reserve0=r0, reserve1=r1),))


def v3swap(sqrt_price_x96: int, *, pool: int = POOL_V3, t_ns: int = 0) -> Message:
    return Message(domain=Domain.MARKET_DATA, event_time_ns=t_ns, receive_time_ns=t_ns, tlvs=(
        V3Swap(pool=PoolId(pool), block_number=100, log_index=0, tx_hash=b"\x01" * 32, amount0=1, amount1=-1,
               sqrt_price_x96=sqrt_price_x96, liquidity=10**18, tick=0),))


def block(number: int, *, base_fee: int, priority: int = S, chain: int = CHAIN, t_ns: int = 0) -> Message:
    return Message(domain=Domain.MARKET_DATA, event_time_ns=t_ns, receive_time_ns=t_ns, tlvs=(
        BlockHeader(chain_id=chain, number=number, timestamp=number * 12, gas_limit=30_000_000, gas_used=15_000_000,
                    hash=number.to_bytes(32, "big"), parent_hash=(number - 1).to_bytes(32, "big"),
                    base_fee=base_fee, priority_fee=priority),))


def cex_trade(venue: int = Venue.BINANCE, *, t_ns: int = 0) -> Message:
    return Message(domain=Domain.MARKET_DATA, event_time_ns=t_ns, receive_time_ns=t_ns, tlvs=(
        Trade(venue=int(venue), side=1, price_scale=2, size_scale=4, trade_id=1, price=200000, size=10000,
              symbol="ETHUSDC"),))


def risk_toml(socks: Mapping[Domain, str | Path], *, max_gas_wei: int, sender: str = "risk",
              extra: str = "") -> str:
    """A risk process's configuration on these relays: source id 7001, a 50 ms timer, ``max_gas_wei`` as the gas
    ceiling, then the ``extra`` sections."""
    return (f'[risk]\nsource_id = 7001\nsender = "{sender}"\ntimer_interval_s = 0.05\n\n{relays_toml(socks)}\n'
            f"[gas_price]\nmax_wei = {max_gas_wei}\n\n{extra}")


async def wait_until(predicate, within: float = 10.0, poll: float = 0.02) -> None:  # type: ignore[no-untyped-def]
    """Poll ``predicate()`` (e.g. a log file's content) until true; TooSlowError after ``within`` s."""
    import trio

    with trio.fail_after(within):
        while True:
            if predicate():
                return
            await trio.sleep(poll)


def cex_fill(signal_id: int, side: int, base: int, quote: int, *, purpose: int = 1, fee: int = 0,
             t_ns: int = 0) -> Message:
    """One Binance ETHUSDT order's fill (side: protocol.market.Side), ETH/USDT as WETH/USDC on chain."""
    return Message(domain=Domain.EXECUTION, event_time_ns=t_ns, receive_time_ns=t_ns, tlvs=(CexFill(
        signal_id=signal_id, venue=Venue.BINANCE, side=side, purpose=purpose, order_id=signal_id, base_units=base,
        quote_units=quote, fee_units=fee, base_token=WETH_ID, quote_token=USDC_ID, symbol="ETHUSDT",
        base_asset="ETH", quote_asset="USDT"),))


def cex_dex_result(signal_id: int, outcome: int, *, cex_side: int = 2, cex_filled: int = ETHER,
                   cex_quote: int = 2000 * 10**6, dex_base: int = 0, dex_quote: int = 0, left_open: int = 0,
                   unwound: int = 0, unwind_quote: int = 0, gas_used: int = 0, gas_price: int = 0, profit: int = 0,
                   t_ns: int = 0) -> Message:
    """A CEX-DEX signal's end: its ExecutionResult (profit token USDC) and LegReport in one message."""
    res = result(signal_id, outcome=outcome, profit=profit, gas_used=gas_used, gas_price=gas_price, token=USDC_ID,
                 t_ns=t_ns)
    rep = LegReport(signal_id=signal_id, outcome=int(outcome), cex_venue=Venue.BINANCE, cex_side=cex_side,
                    dex_result=DexLegResult.EXECUTED if dex_base else DexLegResult.NOT_SENT, base_token=WETH_ID,
                    quote_token=USDC_ID, cex_requested=cex_filled + left_open, cex_filled=cex_filled,
                    cex_quote=cex_quote, dex_base=dex_base, dex_quote=dex_quote, gas_cost=0, unwound=unwound,
                    unwind_quote=unwind_quote, left_open=left_open, realized_profit=profit, symbol="ETHUSDT")
    return res._replace(tlvs=(*res.tlvs, rep))


# ---- cross-chain: chain 1 (the source) and chain 2, the same WETH/USDC addresses on both

CHAIN_B = 2
WETH_B = TokenId.of(CHAIN_B, WETH)
USDC_B = TokenId.of(CHAIN_B, USDC)
POOL_V2_B = PoolId.of(CHAIN_B, Venue.DEVNET_V2_A, VenueKind.UNISWAP_V2, "0x" + "33" * 20, WETH, USDC)


def chain_leg(signal_id: int, leg: int, *, chain: int, token_in: int, token_out: int, amount_in: int,
              amount_out: int, outcome: int = Outcome.EXECUTED, result: int = DexLegResult.EXECUTED,
              gas_used: int = 0, gas_price: int = 0, unwind_in: int = 0, unwind_out: int = 0, unwind_gas: int = 0,
              left_open: int = 0) -> ChainLegReport:
    unwound = DexLegResult.EXECUTED if unwind_in else DexLegResult.NOT_SENT
    return ChainLegReport(
        signal_id=signal_id, chain_id=chain, leg=int(leg), outcome=int(outcome), result=int(result),
        unwind_result=int(unwound), unwind_attempts=1 if unwind_in else 0, block_number=100,
        tx_hash=(signal_id * 2 + leg).to_bytes(32, "big"), gas_used=gas_used, effective_gas_price=gas_price,
        token_in=TokenId(token_in), token_out=TokenId(token_out), amount_in=amount_in, min_out=0,
        amount_out=amount_out if result == DexLegResult.EXECUTED else 0, unwind_block_number=101 if unwind_in else 0,
        unwind_tx_hash=b"\0" * 32, unwind_amount_in=unwind_in, unwind_amount_out=unwind_out,
        unwind_gas_cost=unwind_gas, left_open=left_open, reason="")


def cross_chain_result(signal_id: int, legs: tuple[ChainLegReport, ...], *, outcome: int = Outcome.EXECUTED,
                       profit: int = 0, gas_used: int = 0, gas_price: int = 0, t_ns: int = 0) -> Message:
    """A cross-chain signal's end (specs/protocol.md): its ExecutionResult on the source chain and both legs."""
    res = result(signal_id, outcome=outcome, profit=profit, gas_used=gas_used, gas_price=gas_price, token=USDC_ID,
                 t_ns=t_ns)
    return res._replace(tlvs=(*res.tlvs, *legs))


def bridge(transfer_id: int, state: int, *, src: int = CHAIN_B, dst: int = CHAIN, amount: int = 0, fee: int = 0,
           nonce: int = 0, gas: int = 0, token: str = USDC, t_ns: int = 0, reason: str = "") -> Message:
    """The rebalancer's BridgeTransfer record of one state (USDC by default, chain 2 -> chain 1)."""
    done = state == BridgeTransferState.COMPLETED
    never = state in (BridgeTransferState.REFUSED, BridgeTransferState.FAILED)
    return Message(domain=Domain.EXECUTION, event_time_ns=t_ns, receive_time_ns=t_ns, tlvs=(BridgeTransfer(
        transfer_id=transfer_id, state=int(state), src_chain=src, dst_chain=dst, bridge=1,
        nonce=NO_NONCE if never else nonce, src_token=TokenId.of(src, token), dst_token=TokenId.of(dst, token),
        recipient=b"\x42" * 20, amount=amount, fee=fee if done else 0, received=amount - fee if done else 0,
        src_gas_cost=gas, src_tx_hash=b"\0" * 32 if never else b"\x01" * 32,
        dst_tx_hash=b"\x02" * 32 if done else b"\0" * 32, sent_time_ns=0 if never else t_ns,
        completed_time_ns=t_ns if done else 0, reason=reason),))

