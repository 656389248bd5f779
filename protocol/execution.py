"""Execution TLVs (types 40-59), carried in domain 3 messages."""

from enum import IntEnum

from .fields import bytes32, i256, text, token_id, u8, u32, u64, u256
from .tlv import TLV


class SubmissionMode(IntEnum):
    SHADOW = 0
    PUBLIC = 1
    PRIVATE = 2
    HYBRID = 3


class Outcome(IntEnum):
    """Every signal ends with exactly one of these."""

    EXECUTED = 1
    REVERTED = 2
    STALE = 3
    UNPROFITABLE = 4  # unprofitable after re-validation
    REJECTED_BY_RISK = 5
    HALTED = 6
    NOT_INCLUDED = 7
    SIMULATED = 8  # shadow mode: simulated only, profit is what it would have made
    FAILED = 9  # could not be built/simulated/signed/sent; ``reason`` says why


class ExecutionStarted(TLV):
    TYPE = 41
    signal_id: u64
    chain_id: u32
    mode: u8
    nonce: u64
    tx_hash: bytes32
    max_fee_per_gas: u256
    max_priority_fee_per_gas: u256
    gas_limit: u64


class ExecutionResult(TLV):
    TYPE = 42
    signal_id: u64
    chain_id: u32
    outcome: u8
    block_number: u64
    tx_hash: bytes32
    gas_used: u64
    effective_gas_price: u256
    expected_profit: i256
    realized_profit: i256
    profit_token: token_id
    reason: text
