"""chain.v4_state: the PoolManager storage layout, words decoded as StateLibrary decodes them (the devnet
exactness tests read real pools through it)."""

from __future__ import annotations

from eth_utils import keccak

from chain import v4_state


def test_slots_follow_state_library():
    pid = bytes.fromhex("21c67e77068de97969ba93d4aab21826d33ca12bb9f565d8496e8fda8a82ca27")
    base = int.from_bytes(keccak(pid + (6).to_bytes(32, "big")), "big")
    assert v4_state.pool_state_slot(pid) == base
    assert v4_state.liquidity_slot(pid) == base + 3
    minus_one = b"\xff" * 32
    assert v4_state.tick_info_slot(pid, -1) == int.from_bytes(keccak(minus_one + (base + 4).to_bytes(32, "big")), "big")
    assert v4_state.bitmap_slot(pid, -1) == int.from_bytes(keccak(minus_one + (base + 5).to_bytes(32, "big")), "big")
    words, slots = v4_state.all_bitmap_slots(pid, 60)
    assert words[0] == (-887272 // 60) >> 8 and words[-1] == (887272 // 60) >> 8
    assert slots[words.index(-1)] == v4_state.bitmap_slot(pid, -1)


def test_words_decode_like_state_library():
    word = (3000 << 208) | ((200 << 12 | 500) << 184) | ((-200342 & 0xFFFFFF) << 160) | 3537872363492080736187714
    assert v4_state.decode_slot0(word) == v4_state.Slot0(3537872363492080736187714, -200342, 819700, 3000)
    assert v4_state.decode_tick_liquidity(((-5 & (2**128 - 1)) << 128) | 7) == (7, -5)
    assert v4_state.decode_extsload(v4_state.encode_extsload([1, 2**256 - 1])[4:]) == [1, 2**256 - 1]


def test_initialized_ticks_from_bitmap_words():
    words = {-1: (1 << 255) | 1, 0: 1 << 3}
    assert v4_state.initialized_ticks_in_words(words, 10) == [-2560, -10, 30]
