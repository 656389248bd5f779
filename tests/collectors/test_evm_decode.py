"""Edge cases of collectors.evm.decode, on synthetic logs ABI-encoded with eth-abi (an independent encoder)."""

from __future__ import annotations

import dataclasses

import eth_abi
import pytest
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.evm import decode as D
from collectors.evm.decode import LogDecodeError, LogDecoder
from protocol import (
    InvalidationReason,
    LiquidityChange,
    LiquidityKind,
    Message,
    PoolId,
    StateInvalidation,
    V2Reserves,
    V2Swap,
    V3Initialize,
    V3Swap,
    Venue,
    VenueKind,
    decode,
    encode,
)

TOKEN_A = "0x" + "a0" * 20
TOKEN_B = "0x" + "c0" * 20
V2_ADDR = "0x" + "22" * 20
V3_ADDR = "0x" + "33" * 20
V2_POOL = PoolId.of(1, Venue.UNISWAP_V2, VenueKind.UNISWAP_V2, V2_ADDR, TOKEN_A, TOKEN_B)
V3_POOL = PoolId.of(1, Venue.UNISWAP_V3, VenueKind.UNISWAP_V3, V3_ADDR, TOKEN_A, TOKEN_B)
ALICE = "0x" + "0a" * 19 + "01"
BOB = "0x" + "0b" * 19 + "02"
TX = "0x" + "ab" * 32

INT256_MIN, INT256_MAX = -(1 << 255), (1 << 255) - 1
UINT256_MAX = (1 << 256) - 1
MIN_TICK, MAX_TICK = -887272, 887272


def decoder() -> LogDecoder:
    return LogDecoder.from_pools([V2_POOL, V3_POOL])


def hx(b: bytes) -> str:
    return "0x" + b.hex()


def topic(typ: str, value: object) -> str:
    return hx(eth_abi.encode([typ], [value]))


def make_log(
    address: str,
    topics: list[str],
    data: bytes | str,
    *,
    block: int = 19_000_000,
    index: int = 7,
    removed: bool = False,
) -> dict:
    return {
        "address": address,
        "topics": topics,
        "data": data if isinstance(data, str) else hx(data),
        "blockNumber": hex(block),
        "logIndex": hex(index),
        "transactionHash": TX,
        "transactionIndex": "0x3",
        "blockHash": "0x" + "cd" * 32,
        "removed": removed,
    }


def v3_swap_log(a0: int, a1: int, sp: int, liq: int, tick: int, **kw: object) -> dict:
    data = eth_abi.encode(["int256", "int256", "uint160", "uint128", "int24"], [a0, a1, sp, liq, tick])
    return make_log(V3_ADDR, [D.TOPIC0_V3_SWAP, topic("address", ALICE), topic("address", BOB)], data, **kw)


def v3_liquidity_log(mint: bool, lo: int, hi: int, amount: int, a0: int, a1: int, **kw: object) -> dict:
    topics = [
        D.TOPIC0_V3_MINT if mint else D.TOPIC0_V3_BURN,
        topic("address", ALICE),
        topic("int24", lo),
        topic("int24", hi),
    ]
    if mint:
        data = eth_abi.encode(["address", "uint128", "uint256", "uint256"], [BOB, amount, a0, a1])
    else:
        data = eth_abi.encode(["uint128", "uint256", "uint256"], [amount, a0, a1])
    return make_log(V3_ADDR, topics, data, **kw)


def wire_roundtrip(tlv: object) -> None:
    msg = Message(domain=1, tlvs=(tlv,), event_time_ns=1, receive_time_ns=2)
    assert decode(encode(msg)).tlvs == (tlv,)


# --------------------------------------------------------------------------- topics


def test_topic0_constants_are_keccak_of_their_signatures() -> None:
    assert len(D.EVENT_SIGNATURES) == 19  # V2 4, V3 5, V4 5, Curve 5
    for t0, signature in D.EVENT_SIGNATURES.items():
        assert t0 == hx(keccak(text=signature)), signature
    # and each handler is registered under the right signature
    assert D.EVENT_SIGNATURES[D.TOPIC0_V3_SWAP] == "Swap(address,address,int256,int256,uint160,uint128,int24)"
    assert D.EVENT_SIGNATURES[D.TOPIC0_V2_SYNC] == "Sync(uint112,uint112)"
    assert set(D.HANDLERS) | D.IGNORED_TOPICS == set(D.EVENT_SIGNATURES)


# --------------------------------------------------------------------------- V3


def test_v3_swap_negative_amount_and_negative_tick() -> None:
    dec = decoder()
    tlv = dec.decode(v3_swap_log(-1_234_567, 10**18, 79228162514264337593543950336, 10**20, -201_234))
    assert tlv == V3Swap(
        pool=V3_POOL,
        block_number=19_000_000,
        log_index=7,
        tx_hash=bytes.fromhex(TX[2:]),
        amount0=-1_234_567,
        amount1=10**18,
        sqrt_price_x96=79228162514264337593543950336,
        liquidity=10**20,
        tick=-201_234,
    )
    assert dec.stats.decoded == 1
    wire_roundtrip(tlv)


@pytest.mark.parametrize(
    "a0,a1,sp,liq,tick",
    [
        (INT256_MIN, INT256_MAX, (1 << 160) - 1, (1 << 128) - 1, MIN_TICK),
        (-1, 1, 4295128739, 0, MAX_TICK),
        (0, 0, 1, 1, -1),
        (INT256_MAX, INT256_MIN, 1461446703485210103287273052203988822378723970342, 1, -(1 << 23)),
        (-(10**30), 10**30, 2**96, 2**100, (1 << 23) - 1),
    ],
)
def test_v3_swap_extremes(a0: int, a1: int, sp: int, liq: int, tick: int) -> None:
    tlv = decoder().decode(v3_swap_log(a0, a1, sp, liq, tick))
    assert (tlv.amount0, tlv.amount1, tlv.sqrt_price_x96, tlv.liquidity, tlv.tick) == (a0, a1, sp, liq, tick)
    wire_roundtrip(tlv)


@settings(max_examples=300, deadline=None)
@given(
    a0=st.integers(INT256_MIN, INT256_MAX),
    a1=st.integers(INT256_MIN, INT256_MAX),
    sp=st.integers(0, (1 << 160) - 1),
    liq=st.integers(0, (1 << 128) - 1),
    tick=st.integers(-(1 << 23), (1 << 23) - 1),
    block=st.integers(0, (1 << 64) - 1),
    index=st.integers(0, (1 << 32) - 1),
)
def test_v3_swap_any_abi_value(
    a0: int, a1: int, sp: int, liq: int, tick: int, block: int, index: int
) -> None:
    tlv = decoder().decode(v3_swap_log(a0, a1, sp, liq, tick, block=block, index=index))
    assert (tlv.amount0, tlv.amount1, tlv.sqrt_price_x96, tlv.liquidity, tlv.tick) == (a0, a1, sp, liq, tick)
    assert (tlv.block_number, tlv.log_index) == (block, index)
    wire_roundtrip(tlv)


@pytest.mark.parametrize("mint", [True, False])
@pytest.mark.parametrize("lo,hi", [(-887220, 887220), (-200_010, -199_990), (-60, 0), (10, 20)])
def test_v3_mint_burn_negative_ticks(mint: bool, lo: int, hi: int) -> None:
    dec = decoder()
    tlv = dec.decode(v3_liquidity_log(mint, lo, hi, (1 << 128) - 1, UINT256_MAX, 12345))
    assert tlv == LiquidityChange(
        pool=V3_POOL,
        block_number=19_000_000,
        log_index=7,
        tx_hash=bytes.fromhex(TX[2:]),
        kind=LiquidityKind.MINT if mint else LiquidityKind.BURN,
        tick_lower=lo,
        tick_upper=hi,
        liquidity=(1 << 128) - 1,
        amount0=UINT256_MAX,
        amount1=12345,
        owner=bytes.fromhex(ALICE[2:]),
    )
    wire_roundtrip(tlv)


def test_v3_initialize() -> None:
    data = eth_abi.encode(["uint160", "int24"], [4295128739, MIN_TICK])
    tlv = decoder().decode(make_log(V3_ADDR, [D.TOPIC0_V3_INITIALIZE], data))
    assert tlv == V3Initialize(
        pool=V3_POOL, block_number=19_000_000, log_index=7, sqrt_price_x96=4295128739, tick=MIN_TICK
    )
    wire_roundtrip(tlv)


def test_v3_collect_is_ignored_but_decodable() -> None:
    dec = decoder()
    topics = [D.TOPIC0_V3_COLLECT, topic("address", ALICE), topic("int24", -120), topic("int24", 60)]
    data = eth_abi.encode(["address", "uint128", "uint128"], [BOB, 5, (1 << 128) - 1])
    assert dec.decode(make_log(V3_ADDR, topics, data)) is None
    assert dec.stats.ignored == 1 and dec.stats.decoded == 0
    ev = D.decode_collect(topics, hx(data))
    assert ev == D.CollectEvent(bytes.fromhex(ALICE[2:]), bytes.fromhex(BOB[2:]), -120, 60, 5, (1 << 128) - 1)


# --------------------------------------------------------------------------- V2


def test_v2_sync() -> None:
    r0, r1 = (1 << 112) - 1, 52_123_456_789_012
    data = eth_abi.encode(["uint112", "uint112"], [r0, r1])
    tlv = decoder().decode(make_log(V2_ADDR, [D.TOPIC0_V2_SYNC], data))
    assert tlv == V2Reserves(pool=V2_POOL, block_number=19_000_000, log_index=7, reserve0=r0, reserve1=r1)
    wire_roundtrip(tlv)


def test_v2_swap() -> None:
    amounts = [0, 10**18, UINT256_MAX, 0]
    data = eth_abi.encode(["uint256"] * 4, amounts)
    tlv = decoder().decode(
        make_log(V2_ADDR, [D.TOPIC0_V2_SWAP, topic("address", ALICE), topic("address", BOB)], data)
    )
    assert tlv == V2Swap(
        pool=V2_POOL,
        block_number=19_000_000,
        log_index=7,
        tx_hash=bytes.fromhex(TX[2:]),
        sender=bytes.fromhex(ALICE[2:]),
        recipient=bytes.fromhex(BOB[2:]),
        amount0_in=0,
        amount1_in=10**18,
        amount0_out=UINT256_MAX,
        amount1_out=0,
    )
    wire_roundtrip(tlv)


def test_v2_mint_and_burn() -> None:
    dec = decoder()
    data = eth_abi.encode(["uint256", "uint256"], [1000, 2000])
    mint = dec.decode(make_log(V2_ADDR, [D.TOPIC0_V2_MINT, topic("address", ALICE)], data))
    burn = dec.decode(
        make_log(V2_ADDR, [D.TOPIC0_V2_BURN, topic("address", ALICE), topic("address", BOB)], data)
    )
    common = dict(
        pool=V2_POOL,
        block_number=19_000_000,
        log_index=7,
        tx_hash=bytes.fromhex(TX[2:]),
        tick_lower=0,
        tick_upper=0,
        liquidity=0,
        amount0=1000,
        amount1=2000,
        owner=bytes.fromhex(ALICE[2:]),
    )
    assert mint == LiquidityChange(kind=LiquidityKind.MINT, **common)
    assert burn == LiquidityChange(kind=LiquidityKind.BURN, **common)
    assert dec.stats.decoded == 2


# --------------------------------------------------------------------------- fast-path objects


def test_fast_path_objects_equal_constructor_built_ones() -> None:
    """The decoder fills __dict__ directly; the objects must be indistinguishable from validated ones."""
    tlv = decoder().decode(v3_swap_log(-5, 7, 123, 5, -3))
    rebuilt = V3Swap(**{f.name: getattr(tlv, f.name) for f in dataclasses.fields(V3Swap)})
    assert tlv == rebuilt and hash(tlv) == hash(rebuilt) and tlv.encode() == rebuilt.encode()
    assert repr(tlv) == repr(rebuilt)
    assert list(vars(tlv)) == [f.name for f in dataclasses.fields(V3Swap)]
    with pytest.raises(dataclasses.FrozenInstanceError):
        tlv.amount0 = 1  # type: ignore[misc]


# --------------------------------------------------------------------------- removed, unknown, skipped


def test_removed_log_becomes_a_reorg_invalidation() -> None:
    dec = decoder()
    log = v3_swap_log(-1, 1, 2**96, 10, -5, block=19_000_123, removed=True)
    tlv = dec.decode(log)
    assert type(tlv) is StateInvalidation
    assert (tlv.chain_id, tlv.pool, tlv.from_block, tlv.reason) == (
        1,
        V3_POOL,
        19_000_123,
        InvalidationReason.REORG,
    )
    assert dec.stats.removed == 1 and dec.stats.decoded == 0
    wire_roundtrip(tlv)
    # the event itself is still available
    event = dec.decode_event(log)
    assert type(event) is V3Swap and event.amount0 == -1 and event.block_number == 19_000_123
    assert log["removed"] is True  # not mutated


def test_unknown_pool_and_topic_are_skipped_and_counted() -> None:
    dec = decoder()
    assert dec.decode({**v3_swap_log(1, 1, 1, 1, 1), "address": "0x" + "99" * 20}) is None
    transfer = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
    assert (
        dec.decode(make_log(V3_ADDR, [transfer, topic("address", ALICE), topic("address", BOB)], bytes(32)))
        is None
    )
    assert dec.decode(make_log(V3_ADDR, [], bytes(32))) is None  # anonymous event
    assert (dec.stats.unknown_pool, dec.stats.unknown_topic, dec.stats.decoded) == (1, 2, 0)


def test_checksummed_address_is_accepted() -> None:
    from eth_utils import to_checksum_address

    log = v3_swap_log(1, -1, 1, 1, 1)
    log["address"] = to_checksum_address("0x88e6a0c2ddd26feeb64f039a2c41296fcb3f5640")
    pool = PoolId.of(1, Venue.UNISWAP_V3, VenueKind.UNISWAP_V3, log["address"], TOKEN_A, TOKEN_B)
    dec = LogDecoder({log["address"]: pool})
    assert dec.decode(log).pool == pool


def test_decode_parts_matches_decode() -> None:
    log = v3_swap_log(-9, 9, 99, 999, -9999)
    dec = decoder()
    assert dec.decode_parts(V3_ADDR, log["topics"], log["data"], 19_000_000, 7, TX) == dec.decode(log)


def test_constructor_checks() -> None:
    with pytest.raises(ValueError, match="not the PoolId's address"):
        LogDecoder({V2_ADDR: V3_POOL})
    other_chain = PoolId.of(8453, Venue.UNISWAP_V3, VenueKind.UNISWAP_V3, "0x" + "44" * 20, TOKEN_A, TOKEN_B)
    with pytest.raises(ValueError, match="one LogDecoder per chain"):
        LogDecoder.from_pools([V3_POOL, other_chain])
    with pytest.raises(TypeError):
        LogDecoder({V3_ADDR: int(V3_POOL)})  # type: ignore[dict-item]
    assert LogDecoder.from_pools([V3_POOL]).chain_id == 1


# --------------------------------------------------------------------------- malformed


def _swap_data() -> str:
    return v3_swap_log(-1, 2, 3, 4, -5)["data"]


def _replace_word(data: str, i: int, word_hex: str) -> str:
    return data[: 2 + 64 * i] + word_hex + data[2 + 64 * (i + 1) :]


MALFORMED_SWAPS = {
    "short data": lambda log: {**log, "data": log["data"][:-64]},
    "long data": lambda log: {**log, "data": log["data"] + "00" * 32},
    "odd hex length": lambda log: {**log, "data": log["data"][:-1]},
    "non-hex digit": lambda log: {**log, "data": log["data"][:-1] + "g"},
    "underscore (int() would accept it)": lambda log: {
        **log,
        "data": log["data"][:10] + "_" + log["data"][11:],
    },
    "embedded whitespace": lambda log: {**log, "data": log["data"][:10] + " " + log["data"][11:]},
    "minus sign": lambda log: {**log, "data": "0x-" + log["data"][3:]},
    "missing 0x": lambda log: {**log, "data": "00" + log["data"][2:]},
    "empty data": lambda log: {**log, "data": "0x"},
    "data not a string": lambda log: {**log, "data": None},
    "sqrtPrice padding": lambda log: {**log, "data": _replace_word(log["data"], 2, "01" + "00" * 31)},
    "liquidity padding": lambda log: {
        **log,
        "data": _replace_word(log["data"], 3, "00" * 15 + "01" + "00" * 16),
    },
    "tick sign extension": lambda log: {**log, "data": _replace_word(log["data"], 4, "00" * 28 + "00800000")},
    "too few topics": lambda log: {**log, "topics": log["topics"][:2]},
    "too many topics": lambda log: {**log, "topics": [*log["topics"], log["topics"][1]]},
    "bad tx hash": lambda log: {**log, "transactionHash": "0x1234"},
    "bad blockNumber": lambda log: {**log, "blockNumber": "0xzz"},
    "pending log": lambda log: {**log, "blockNumber": None, "logIndex": None},
    "blockNumber over uint64": lambda log: {**log, "blockNumber": hex(1 << 64)},
    "missing data field": lambda log: {k: v for k, v in log.items() if k != "data"},
    "topics not strings": lambda log: {**log, "topics": [[1], 2]},
    "address not a string": lambda log: {**log, "address": 1234},
}


@pytest.mark.parametrize("name", sorted(MALFORMED_SWAPS))
def test_malformed_swap_raises_log_decode_error(name: str) -> None:
    dec = decoder()
    bad = MALFORMED_SWAPS[name](v3_swap_log(-1, 2, 3, 4, -5))
    with pytest.raises(LogDecodeError) as info:
        dec.decode(bad)
    assert info.value.log is bad
    assert dec.stats.malformed == 1 and dec.stats.decoded == 0
    assert isinstance(info.value, ValueError)  # callers may catch ValueError too


def v2_swap_log() -> dict:
    data = eth_abi.encode(["uint256"] * 4, [1, 2, 3, 4])
    return make_log(V2_ADDR, [D.TOPIC0_V2_SWAP, topic("address", ALICE), topic("address", BOB)], data)


MALFORMED_ADDRESS_TOPICS = {
    "padding": lambda t: "0x01" + t[4:],
    "short": lambda t: t[:-2],
    "long": lambda t: t + "00",
    "non-hex": lambda t: t[:-1] + "x",
    "no 0x": lambda t: "00" + t[2:],
}


@pytest.mark.parametrize("name", sorted(MALFORMED_ADDRESS_TOPICS))
def test_malformed_address_topic_raises(name: str) -> None:
    # V3 Swap does not carry sender/recipient, so only the topic count is checked there;
    # V2 Swap decodes both address topics.
    log = v2_swap_log()
    bad = {
        **log,
        "topics": [log["topics"][0], MALFORMED_ADDRESS_TOPICS[name](log["topics"][1]), log["topics"][2]],
    }
    with pytest.raises(LogDecodeError, match="address|ValueError"):
        decoder().decode(bad)


def test_malformed_messages_say_where() -> None:
    with pytest.raises(LogDecodeError, match=r"Swap\(address,address,int256.*block 19000000 log 7.*words"):
        decoder().decode(MALFORMED_SWAPS["short data"](v3_swap_log(-1, 2, 3, 4, -5)))


def test_malformed_v2_and_v3_liquidity_events() -> None:
    dec = decoder()
    too_big = eth_abi.encode(["uint256", "uint256"], [1 << 112, 1])
    with pytest.raises(LogDecodeError, match="uint112"):
        dec.decode(make_log(V2_ADDR, [D.TOPIC0_V2_SYNC], too_big))
    out_of_range_tick = hx(eth_abi.encode(["int256"], [1 << 23]))
    log = v3_liquidity_log(True, -10, 10, 1, 2, 3)
    with pytest.raises(LogDecodeError, match="int24"):
        dec.decode(
            {**log, "topics": [log["topics"][0], log["topics"][1], out_of_range_tick, log["topics"][3]]}
        )
    mint = v3_liquidity_log(True, -10, 10, 1, 2, 3)
    with pytest.raises(LogDecodeError, match="padding"):  # Mint's data-word sender with dirty padding
        dec.decode({**mint, "data": "0x" + "ff" * 12 + mint["data"][26:]})
    burn = v3_liquidity_log(False, -10, 10, 1, 2, 3)
    with pytest.raises(LogDecodeError, match="words"):
        dec.decode({**burn, "data": mint["data"]})
    with pytest.raises(LogDecodeError):
        D.decode_collect(mint["topics"], mint["data"])
    assert dec.stats.malformed == 4


def test_event_from_a_pool_of_the_wrong_kind_is_an_error() -> None:
    data = eth_abi.encode(["uint112", "uint112"], [1, 2])
    with pytest.raises(LogDecodeError, match="configured as UNISWAP_V3"):
        decoder().decode(make_log(V3_ADDR, [D.TOPIC0_V2_SYNC], data))


# --------------------------------------------------------------------------- V4 (the PoolManager's events)

MANAGER = "0x" + "44" * 20
V4_ID = "0x" + "4d" * 20 + "e1" * 12  # a pool id: the instrument id carries its first 20 bytes
OTHER_ID = "0x" + "4e" * 32
V4_POOL = PoolId.of(1, Venue.UNISWAP_V4, VenueKind.UNISWAP_V4, V4_ID[:42], TOKEN_A, TOKEN_B)


def v4_decoder() -> LogDecoder:
    return LogDecoder.from_pools([V2_POOL, V3_POOL, V4_POOL], v4_manager=MANAGER)


def v4_swap_log(a0: int, a1: int, sp: int, liq: int, tick: int, fee: int = 3000, pool_id: str = V4_ID,
                **kw: object) -> dict:
    data = eth_abi.encode(["int128", "int128", "uint160", "uint128", "int24", "uint24"], [a0, a1, sp, liq, tick, fee])
    return make_log(MANAGER, [D.TOPIC0_V4_SWAP, pool_id, topic("address", ALICE)], data, **kw)


def v4_modify_log(lo: int, hi: int, delta: int, **kw: object) -> dict:
    data = eth_abi.encode(["int24", "int24", "int256", "bytes32"], [lo, hi, delta, b"\x07" * 32])
    return make_log(MANAGER, [D.TOPIC0_V4_MODIFY_LIQUIDITY, V4_ID, topic("address", BOB)], data, **kw)


def test_v4_swap_becomes_a_v3_swap_from_the_pool_side() -> None:
    dec = v4_decoder()
    assert dec.addresses == [V2_ADDR, V3_ADDR, MANAGER]
    # the swapper paid 10**18 of token0 (negative delta) and received 3e9 of token1
    tlv = dec.decode(v4_swap_log(-(10**18), 3_000_000_000, 2**96, 10**20, -201_234))
    assert tlv == V3Swap(pool=V4_POOL, block_number=19_000_000, log_index=7, tx_hash=bytes.fromhex(TX[2:]),
                         amount0=10**18, amount1=-3_000_000_000, sqrt_price_x96=2**96, liquidity=10**20,
                         tick=-201_234)
    wire_roundtrip(tlv)
    # the extremes of int128 both ways
    lo, hi = -(1 << 127), (1 << 127) - 1
    assert dec.decode(v4_swap_log(lo, hi, 1, 0, 0)).amount0 == 1 << 127  # type: ignore[union-attr]
    wide = eth_abi.encode(["int256", "int256", "uint160", "uint128", "int24", "uint256"], [-(1 << 200), 1, 1, 0, 0, 1])
    with pytest.raises(LogDecodeError, match="int128"):
        dec.decode({**v4_swap_log(1, 1, 1, 0, 0), "data": hx(wide)})
    big_fee = eth_abi.encode(["int256", "int256", "uint160", "uint128", "int24", "uint256"], [1, 1, 1, 0, 0, 1 << 24])
    with pytest.raises(LogDecodeError, match="fee"):
        dec.decode({**v4_swap_log(1, 1, 1, 0, 0), "data": hx(big_fee)})


def test_v4_modify_liquidity_is_a_liquidity_change_and_zero_delta_is_ignored() -> None:
    dec = v4_decoder()
    mint = dec.decode(v4_modify_log(-600, 1200, 5 * 10**18))
    assert mint == LiquidityChange(pool=V4_POOL, block_number=19_000_000, log_index=7, tx_hash=bytes.fromhex(TX[2:]),
                                   kind=LiquidityKind.MINT, tick_lower=-600, tick_upper=1200, liquidity=5 * 10**18,
                                   amount0=0, amount1=0, owner=bytes.fromhex(BOB[2:]))
    burn = dec.decode(v4_modify_log(-600, 1200, -(10**18), index=8))
    assert isinstance(burn, LiquidityChange) and (burn.kind, burn.liquidity) == (LiquidityKind.BURN, 10**18)
    assert dec.decode(v4_modify_log(-600, 1200, 0)) is None and dec.stats.ignored == 1
    wire_roundtrip(mint)


def test_v4_initialize_and_protocol_fee() -> None:
    from protocol import V4ProtocolFee

    dec = v4_decoder()
    data = eth_abi.encode(["uint24", "int24", "address", "uint160", "int24"], [500, 10, "0x" + "00" * 20, 2**96, -5])
    init = make_log(MANAGER, [D.TOPIC0_V4_INITIALIZE, V4_ID, topic("address", TOKEN_A), topic("address", TOKEN_B)],
                    data)
    assert dec.decode(init) == V3Initialize(pool=V4_POOL, block_number=19_000_000, log_index=7, sqrt_price_x96=2**96,
                                            tick=-5)
    fee = make_log(MANAGER, [D.TOPIC0_V4_PROTOCOL_FEE_UPDATED, V4_ID], eth_abi.encode(["uint24"], [(200 << 12) | 500]))
    tlv = dec.decode(fee)
    assert tlv == V4ProtocolFee(pool=V4_POOL, block_number=19_000_000, log_index=7, protocol_fee=(200 << 12) | 500)
    wire_roundtrip(tlv)


def test_v4_other_pools_and_other_manager_events_are_skipped_and_counted() -> None:
    dec = v4_decoder()
    assert dec.decode(v4_swap_log(-1, 1, 2**96, 1, 0, pool_id=OTHER_ID)) is None
    assert dec.stats.unknown_pool == 1
    donate = make_log(MANAGER, [D.TOPIC0_V4_DONATE, V4_ID, topic("address", ALICE)], eth_abi.encode(["uint256"] * 2, [1, 2]))
    assert dec.decode(donate) is None and dec.stats.ignored == 1
    transfer = make_log(MANAGER, [hx(keccak(text="Transfer(address,address,address,uint256,uint256)")),
                                  topic("address", ALICE), topic("address", BOB), topic("uint256", 5)],
                        eth_abi.encode(["address", "uint256"], [ALICE, 1]))
    assert dec.decode(transfer) is None and dec.stats.unknown_topic == 1
    # a checksummed manager address and upper-case pool id topic still decode
    log = v4_swap_log(-1, 1, 2**96, 1, 0)
    log = {**log, "address": MANAGER.upper().replace("0X", "0x"), "topics": [log["topics"][0], log["topics"][1].upper()
                                                                                .replace("0X", "0x"), log["topics"][2]]}
    assert isinstance(dec.decode(log), V3Swap)
    # a removed log of a followed V4 pool invalidates it
    inv = dec.decode(v4_swap_log(-1, 1, 2**96, 1, 0, removed=True))
    assert isinstance(inv, StateInvalidation) and inv.pool == V4_POOL and inv.reason == InvalidationReason.REORG
    # V4 pools need their PoolManager
    with pytest.raises(ValueError, match="v4_manager"):
        LogDecoder.from_pools([V4_POOL])
