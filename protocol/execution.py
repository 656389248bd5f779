"""Execution TLVs (types 40-59), carried in domain 3 messages.

A CEX-DEX signal (``SignalKind.CEX_DEX``, ``specs/cex-legs.md``) ends with one message holding its
``ExecutionResult`` and a ``LegReport`` that names what each leg did; every order the executor placed on
the exchange is reported as it is answered, one ``CexFill`` each (entry and unwind orders alike), which
is what the books move the exchange balances by.

A cross-chain signal (``SignalKind.CROSS_CHAIN``, ``specs/cross-chain-legs.md``) ends with one message
holding its ``ExecutionResult`` and two ``ChainLegReport`` records, one per chain: what that leg's swap did
and, when the other leg failed, what swapping its position back (the unwind) did.

The rebalancer (``execution/rebalance/``, ``specs/rebalance.md``) reports each inventory transfer it
bridges between chains as ``BridgeTransfer`` records: SENT when the bridge's send is mined, then one of
COMPLETED (landed on the destination, with the fee and the amount received), REFUSED or FAILED. It signs
nothing itself: each of its transactions is an ``OwnerTxRequest`` the executor -- the one signer and nonce
authority of the contracts' owner on every chain -- signs, sends and answers with an ``OwnerTxAnswer``
(``specs/rebalance.md``, "One signer per account").
"""

from enum import IntEnum

from .fields import address, bytes32, i256, text, token_id, u8, u16, u32, u64, u256
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
    # CEX-DEX signals (a ``LegReport`` in the same message says what each leg did; both legs filled
    # is EXECUTED) and cross-chain signals (two ``ChainLegReport``; both legs landed is EXECUTED, both
    # failed is REVERTED or NOT_INCLUDED):
    UNWOUND = 10  # one leg traded, the other did not; the traded leg's position was closed again
    LEG_OPEN = 11  # a position is (or may be) left open: the risk process and the operator act
    CEX_NOT_FILLED = 12  # the CEX order filled nothing (rejected, expired, no answer); no DEX leg sent


class DexLegResult(IntEnum):
    NOT_SENT = 0
    EXECUTED = 1
    REVERTED = 2
    NOT_INCLUDED = 3
    TIMEOUT = 4  # not finished within max_leg_open (the leg was unwound; its deadline keeps it from landing)


class ChainLeg(IntEnum):
    """Which leg of a cross-chain signal a ``ChainLegReport`` is: the signal path's hop index."""

    SOURCE = 0  # hop 0: on the signal's source chain, quote -> base
    DESTINATION = 1  # hop 1: on the destination chain, base -> quote


class CexOrderPurpose(IntEnum):
    ENTRY = 1  # the CEX leg of the trade
    UNWIND = 2  # closing an open CEX position


class BridgeTransferState(IntEnum):
    SENT = 1  # the bridge's send is mined on the source chain: ``nonce`` and ``amount`` are final
    COMPLETED = 2  # the transfer landed on the destination: ``fee``, ``received``, ``dst_tx_hash`` filled
    REFUSED = 3  # the source bridge refused the send (reverted): nothing locked, the tokens stay ours
    FAILED = 4  # the rebalancer could not get the tokens to the bridge (a step reverted or was dropped)


class OwnerCall(IntEnum):
    """What an ``OwnerTxRequest`` asks the owner of a chain's AlphaPulseArb to send (the executor builds the
    calldata: a request names no address the tokens could go to)."""

    WITHDRAW = 1  # AlphaPulseArb.withdrawToken(token, owner, amount): the contract's tokens to the owner
    APPROVE = 2  # token.approve(the chain's bridge, amount)
    BRIDGE_SEND = 3  # bridge.send(token, amount, dst_chain, dst_chain's AlphaPulseArb)
    RETURN = 4  # token.transfer(the chain's AlphaPulseArb, amount): the owner's tokens back to the contract


class OwnerTxStatus(IntEnum):
    SENT = 1  # signed with the executor's next nonce, recorded, broadcast: ``nonce`` and ``tx_hash`` are final
    REVERTS = 2  # its simulation (eth_estimateGas from the owner) reverts: nothing sent
    REFUSED = 3  # not sent: not allowed, a chain or bridge not configured, the node refused it (``reason``)


NO_NONCE = (1 << 64) - 1  # BridgeTransfer.nonce of a transfer the bridge never numbered (REFUSED, FAILED)


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


class CexFill(TLV):
    """One order the executor placed on an exchange, as the exchange answered it (nothing filled is
    reported too). ``side`` is ``protocol.market.Side`` (BUY / SELL of the base asset); amounts are in the
    chain tokens' base units: ``base_units`` traded, ``quote_units`` paid (BUY) or received (SELL) with the
    taker fee included (``fee_units`` of it)."""

    TYPE = 44
    signal_id: u64
    venue: u16
    side: u8
    purpose: u8  # CexOrderPurpose
    order_id: u64
    base_units: u256
    quote_units: u256
    fee_units: u256
    base_token: token_id  # the same assets on the signal's chain (valuation; the executor's configuration)
    quote_token: token_id
    symbol: text
    base_asset: text  # the venue's asset names (the books' balance keys)
    quote_asset: text


class LegReport(TLV):
    """What each leg of a CEX-DEX signal did; sent with its ``ExecutionResult`` (same ``outcome``).

    Base amounts in ``base_token`` units, quote amounts in ``quote_token`` units (on the signal's chain).
    ``cex_side`` is the entry order's ``Side``. ``realized_profit`` is net of the taker fee and of the DEX
    leg's gas (``gas_cost``, in quote units); the ``ExecutionResult`` carries the gross one, gas apart,
    like every other result."""

    TYPE = 45
    signal_id: u64
    outcome: u8  # Outcome, as in the ExecutionResult
    cex_venue: u16
    cex_side: u8
    dex_result: u8  # DexLegResult
    base_token: token_id
    quote_token: token_id
    cex_requested: u256
    cex_filled: u256
    cex_quote: u256
    dex_base: u256
    dex_quote: u256
    gas_cost: u256
    unwound: u256
    unwind_quote: u256
    left_open: u256
    realized_profit: i256
    symbol: text


class ChainLegReport(TLV):
    """One leg of a cross-chain signal (``specs/cross-chain-legs.md``); two of them, one per chain, are sent
    with the signal's ``ExecutionResult`` (same ``outcome``).

    The leg is one ``AlphaPulseArb.swap`` on ``chain_id`` from the contract's inventory: ``amount_in`` of
    ``token_in`` (the amount sent, also when the leg failed) for ``amount_out`` of ``token_out`` (realized:
    0 unless ``result`` is EXECUTED), at least ``min_out``. ``tx_hash`` / ``block_number`` / ``gas_used`` /
    ``effective_gas_price`` are the leg's transaction (zero when not sent or not included). When the other
    leg failed, a landed leg is unwound by swapping back on the same pool: ``unwind_amount_in`` of
    ``token_out`` for ``unwind_amount_out`` of ``token_in`` (``unwind_result`` EXECUTED; the last attempt's
    transaction in ``unwind_tx_hash`` / ``unwind_block_number``), after ``unwind_attempts`` attempts whose
    gas together cost ``unwind_gas_cost`` wei of the chain's gas token; ``left_open`` is the ``token_out``
    still held from this leg when the unwind could not complete (outcome LEG_OPEN). Token amounts are in
    each token's base units on ``chain_id``."""

    TYPE = 46
    signal_id: u64
    chain_id: u32
    leg: u8  # ChainLeg
    outcome: u8  # Outcome, as in the ExecutionResult
    result: u8  # DexLegResult of the leg's swap
    unwind_result: u8  # DexLegResult of the last unwind attempt (NOT_SENT: no unwind)
    unwind_attempts: u8
    block_number: u64
    tx_hash: bytes32
    gas_used: u64
    effective_gas_price: u256
    token_in: token_id
    token_out: token_id
    amount_in: u256
    min_out: u256
    amount_out: u256
    unwind_block_number: u64
    unwind_tx_hash: bytes32
    unwind_amount_in: u256
    unwind_amount_out: u256
    unwind_gas_cost: u256
    left_open: u256
    reason: text
class BridgeTransfer(TLV):
    """One inventory transfer between chains through a bridge, published by the rebalancer on each state
    change (``specs/rebalance.md``). A reader dedupes by ``(src_chain, nonce, state)`` for SENT and
    COMPLETED (the bridge numbers each source chain's transfers) and by ``(src_chain, transfer_id, state)``
    for REFUSED and FAILED, whose ``nonce`` is ``NO_NONCE``: the rebalancer republishes after a restart.

    Amounts are in the token's base units: ``amount`` left ``src_token``'s holder (the source chain's
    AlphaPulseArb contract), ``received`` = ``amount - fee`` reached ``recipient`` (the destination chain's
    contract) as ``dst_token``; ``fee`` and ``received`` are 0 until COMPLETED. ``src_gas_cost`` is the wei
    of the source chain's gas token the rebalancer's own transactions for this transfer cost (withdraw,
    approve, send). Times are block timestamps in ns (``sent_time_ns`` of the send's block,
    ``completed_time_ns`` of the completion's block; 0 when not there)."""

    TYPE = 48
    transfer_id: u64  # the rebalancer's own id (its state file), unique per rebalancer
    state: u8  # BridgeTransferState
    src_chain: u32
    dst_chain: u32
    bridge: u16  # the bridge id, as in CrossChainArbitrage.bridge
    nonce: u64  # the source bridge's transfer nonce (TransferSent), NO_NONCE when never sent
    src_token: token_id
    dst_token: token_id
    recipient: address
    amount: u256
    fee: u256
    received: u256
    src_gas_cost: u256
    src_tx_hash: bytes32  # the bridge send (zero when none was mined)
    dst_tx_hash: bytes32  # the completion on the destination (zero until COMPLETED)
    sent_time_ns: u64
    completed_time_ns: u64
    reason: text  # why REFUSED / FAILED; empty otherwise


class OwnerTxRequest(TLV):
    """A transaction the rebalancer needs from the owner of ``chain_id``'s AlphaPulseArb, which only the executor
    signs (one nonce sequence per chain and account). ``request_id`` is unique per requester (its
    ``source_id``); the same request sent again gets the same transaction back, never a second one."""

    TYPE = 47
    request_id: u64
    chain_id: u32
    call: u8  # OwnerCall
    token: address
    amount: u256
    dst_chain: u32  # BRIDGE_SEND: the destination chain; 0 otherwise


class OwnerTxAnswer(TLV):
    """The executor's answer to the ``OwnerTxRequest`` ``request_id`` of the producer ``requester``: SENT with
    the transaction's ``nonce`` and ``tx_hash`` (settled from the chain by the requester), or REVERTS / REFUSED
    with the ``reason`` and nothing sent (``nonce`` 2^64-1, ``tx_hash`` zero). ``sender`` is the owner."""

    TYPE = 49
    request_id: u64
    requester: u32  # the request's source_id
    chain_id: u32
    status: u8  # OwnerTxStatus
    nonce: u64
    tx_hash: bytes32
    sender: address
    reason: text
