"""Signal TLVs (types 20-39), carried in domain 2 messages.

A signal message is ``SignalIdentity + Economics + ArbitragePath`` (plus a
``TraceContext``, a ``DecisionPoint`` and a ``FlashLoan``); a cross-chain opportunity adds ``CrossChainArbitrage``.
All money is integer base units of ``profit_token``; gas in wei.
"""

from enum import IntEnum
from typing import Annotated

from .fields import address, i256, list_of, pool_id, text, token_id, u8, u16, u32, u64, u256
from .tlv import TLV, Record


class SignalKind(IntEnum):
    TWO_POOL = 1
    CYCLE = 2
    CROSS_CHAIN = 3
    CEX_DEX = 4  # one hop on a CEX order book (its pool is a cex_book_id), one on a DEX pool


class SignalIdentity(TLV):
    TYPE = 20
    signal_id: u64
    strategy_id: u16
    kind: u8
    confidence_bps: u16  # 0..10000
    chain_id: u32
    block_number: u64  # the block whose state the signal was computed at
    strategy: text


class Economics(TLV):
    """net_profit = gross_profit - gas_cost - flash_fee - slippage_allowance (all in profit_token)."""

    TYPE = 21
    profit_token: token_id
    gross_profit: i256
    gas_cost: u256
    flash_fee: u256
    slippage_allowance: u256
    net_profit: i256
    gas_units: u64
    gas_price_wei: u256  # base fee + priority fee used for gas_cost


class Hop(Record):
    pool: pool_id
    venue_kind: u8
    token_in: address
    token_out: address
    amount_in: u256
    amount_out: u256


class ArbitragePath(TLV):
    """Ordered hops; hop i's token_out is hop i+1's token_in, the last returns to the first's token_in."""

    TYPE = 22
    hops: Annotated[tuple[Hop, ...], list_of(Hop)]


class DecisionPoint(TLV):
    """The market state a signal was decided on: every event up to and including
    ``(block_number, log_index)`` was applied, and never half a transaction (the collector publishes
    a transaction's logs as one message). ``log_index`` 0xFFFFFFFF: the whole block (a snapshot).
    A new type rather than fields appended to ``SignalIdentity``: older signals lack it."""

    TYPE = 23
    block_number: u64
    log_index: u32


class FlashSource(IntEnum):
    """Who lends a cycle's start token (``FlashLoan.source``)."""

    POOL = 1  # one of the path's own V2/V3 pools, by a flash swap (no fee beyond its swap fee)
    V4_UNLOCK = 2  # the V4 PoolManager, inside its unlock (the path has a V4 hop; free)
    BALANCER = 3  # the Balancer V2 Vault's flash loan (its fee: Economics.flash_fee)


class FlashLoan(TLV):
    """The flash source the strategy chose for the path (the cheapest, fee and gas counted); the
    executor passes it to the contract (BALANCER: ``executeBalancer``; else ``execute``). A new type
    rather than a field of ``Economics``: older signals lack it, and mean POOL or V4_UNLOCK (the
    contract picks between those from the hop kinds)."""

    TYPE = 24
    source: u8


class CrossChainArbitrage(TLV):
    TYPE = 31
    source_chain: u32
    dest_chain: u32
    bridge: u16
    timing_risk_blocks: u32
    bridge_cost: u256
    source_gas_cost: u256
    dest_gas_cost: u256
