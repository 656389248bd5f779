"""The chaos checks judge hand-made evidence: each passes on a consistent system and fails, naming the
culprit, on every kind of damage it exists to catch."""

from __future__ import annotations

from collections import Counter

from tools.chaos_checks import (
    ChainTx,
    RelayStart,
    StoreTx,
    check_archive,
    check_balances,
    check_books_txs,
    check_nonces,
    check_outcomes,
)

ARB = "0x" + "ab" * 20


def tx(n: int, *, to: str = ARB, status: int = 1) -> ChainTx:
    return ChainTx(tx_hash="0x" + f"{n:064x}", nonce=n, to=to, status=status, fee_wei=21_000 * n)


def booked(n: int) -> str:
    return f"{n:064x}"  # the books keep the hash as bare hex


def test_books_txs_pass_once_each_and_fail_on_missing_twice_and_phantom() -> None:
    txs = [tx(1), tx(2), tx(3, status=0)]
    v = check_books_txs(txs, [booked(1), booked(2), booked(3), "00" * 32], ARB)
    assert v.ok, v.details
    assert "3 signer transaction(s) on chain (3 to our contract, 2 succeeded), 3 booked" == v.summary
    v = check_books_txs(txs, [booked(1), booked(1), booked(9)], ARB)
    assert not v.ok and v.lost == 2 and v.duplicated == 1
    text = "\n".join(v.details)
    assert "2 signer transaction(s) on chain not in the books" in text and tx(2).tx_hash in text
    assert "booked more than once" in text and "x2" in text
    assert "not on chain" in text and "0x" + booked(9) in text


def test_balances_must_agree_to_the_wei() -> None:
    assert check_balances({1: -5, 2: 7}, {1: -5, 2: 7}, {1: "ETH", 2: "WETH"}).ok
    v = check_balances({1: -5, 2: 7}, {1: -5, 2: 8, 3: 1}, {1: "ETH", 2: "WETH"})
    assert not v.ok
    assert "WETH: books 7, chain 8 (difference 1 wei)" in v.details and any(d.startswith("0x3") for d in v.details)


def test_every_signal_needs_exactly_one_outcome() -> None:
    assert check_outcomes([1, 2, 3], [3, 1, 2]).ok
    v = check_outcomes([1, 2, 3, 3], [1, 1, 9])
    assert not v.ok and v.lost == 2 and v.duplicated == 1
    text = "\n".join(v.details)
    assert "published more than once: 3" in text
    assert "2 signal(s) without an outcome: 2, 3" in text
    assert "more than one outcome: 1 x2" in text
    assert "never published: 9" in text


def test_nonces_one_signal_each_and_the_store_agrees_with_the_chain() -> None:
    chain = [tx(4), tx(5)]
    store = [StoreTx(tx(4).tx_hash, 4, "mined", 10), StoreTx("0x" + "ee" * 32, 5, "replaced", 11),
             StoreTx(tx(5).tx_hash, 5, "mined", 11)]
    assert check_nonces(chain, store).ok
    # a nonce handed to a second signal, a second mined row, a chain tx the store never signed
    bad = [*store, StoreTx("0x" + "dd" * 32, 5, "mined", 12)]
    v = check_nonces([*chain, tx(6)], bad)
    text = "\n".join(v.details)
    assert not v.ok
    assert "given to more than one signal: 5 (signals [11, 12])" in text
    assert "two mined transactions in the store: 5" in text
    assert "the store never signed" in text and tx(6).tx_hash in text
    assert "the store calls mined are not on chain" in text
    # the store calls a chain transaction pending, or files it under another nonce
    v = check_nonces(chain, [StoreTx(tx(4).tx_hash, 4, "pending", 10), StoreTx(tx(5).tx_hash, 7, "mined", 11)])
    assert not v.ok and "not recorded as mined under their nonce" in "\n".join(v.details)


def test_archive_contiguous_per_epoch_with_every_gap_recorded() -> None:
    starts = [RelayStart(1, 0), RelayStart(2, 40), RelayStart(3, 70)]
    seqs = Counter(range(1, 101))
    v = check_archive("signal", seqs, 100, [], starts, 0)
    assert v.ok, v.details
    assert "[1:1..40 2:41..70 3:71..100]" in v.summary
    # a hole nobody recorded; a sequence archived twice; one beyond the relay's head
    damaged = Counter(s for s in range(1, 101) if not 50 <= s <= 52)
    damaged[7] += 1
    damaged[101] = 1
    v = check_archive("signal", damaged, 100, [], starts, 0)
    text = "\n".join(v.details)
    assert not v.ok and v.lost == 3 and v.duplicated == 1
    assert "missing with no recorded gap: 50..52" in text and "more than once: 7" in text and "outside 1..100" in text
    assert "2:41..70(-3)" in v.summary
    # the same hole recorded by the archiver is explained only if the relay logged a Resync
    gap = [{"kind": "resync", "from_seq": 50, "to_seq": 52}]
    holed = Counter(s for s in range(1, 101) if not 50 <= s <= 52)
    assert check_archive("signal", holed, 100, gap, starts, 1).ok
    assert "logged no Resync" in "\n".join(check_archive("signal", holed, 100, gap, starts, 0).details)


def test_archive_epochs_must_increase_and_a_head_that_went_back_needs_a_rewind() -> None:
    seqs = Counter(range(1, 51))
    v = check_archive("execution", seqs, 50, [], [RelayStart(1, 0), RelayStart(1, 30)], 0)
    assert not v.ok and "epochs do not strictly increase" in "\n".join(v.details)
    back = [RelayStart(1, 0), RelayStart(2, 30), RelayStart(3, 25)]
    v = check_archive("execution", seqs, 50, [], back, 0)
    assert not v.ok and "below epoch 2's 30" in "\n".join(v.details)
    rewind = [{"kind": "rewind", "from_seq": 26, "to_seq": 30}]
    assert check_archive("execution", seqs, 50, rewind, back, 0).ok
