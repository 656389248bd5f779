"""What ``alphapulse chaos`` checks once the system has drained: plain functions over what it read
(the chain, the books, the executor's store, the Parquet archives, the relays' logs), each returning a
:class:`Verdict`. No I/O here: ``tools/chaos.py`` gathers, these judge, and the tests feed them
hand-made evidence of every failure they must catch.

The checks and what each one means:

* **books: every on-chain transaction once** -- every transaction the executor's signer sent
  after the start (read from the chain's blocks) appears exactly once among the books' results
  (``results.tx_hash``), and every result that names a transaction names one on chain;
* **books = chain balances** -- the books' balance of every token (profit in WETH or in a cycle's other
  start token, gas in the native coin) equals, to the wei, the change on chain since the start: the
  profit recipient's WETH and other tokens, the signer's native coin;
* **one outcome per signal** -- every signal on the signal relay has exactly one ``ExecutionResult``
  on the execution relay, and no result names a signal that was never published;
* **no nonce used twice** -- in the executor's store a nonce belongs to one signal only and at most
  one of its transactions is ``mined``; every signer transaction on chain is in the store as mined
  under the same nonce, and nothing the store calls mined is missing from the chain;
* **archives contiguous per epoch** -- per domain the archive holds every sequence from 1 to the
  relay's final head exactly once, except ranges recorded in ``_gaps.jsonl`` while the relay logged
  a Resync; the relay's epochs (one per start, from its log) strictly increase, and its head at each
  start is never below the one before (a ``kill -9`` loses nothing acknowledged) unless the archiver
  recorded the rewind. Each epoch's range ``(head at its start, head at the next start]`` is
  reported with what the archive misses of it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_DETAIL = 8  # detail lines shown per verdict; the counts are always complete


@dataclass
class Verdict:
    name: str
    ok: bool = True
    summary: str = ""
    details: list[str] = field(default_factory=list)
    lost: int = 0
    duplicated: int = 0

    def fail(self, line: str) -> None:
        self.ok = False
        self.details.append(line)


def _shown(items: Iterable[Any]) -> str:
    items = list(items)
    more = f" ... (+{len(items) - MAX_DETAIL})" if len(items) > MAX_DETAIL else ""
    return ", ".join(str(i) for i in items[:MAX_DETAIL]) + more


@dataclass(frozen=True, slots=True)
class ChainTx:
    """A transaction the executor's signer sent, as the chain has it."""

    tx_hash: str  # 0x-hex, lower case
    nonce: int
    to: str  # lower case, "" for a creation
    status: int
    fee_wei: int  # gas_used * effective_gas_price


def norm_hash(h: str | bytes) -> str:
    if isinstance(h, bytes):
        return "0x" + h.hex()
    h = h.lower()
    return h if h.startswith("0x") else "0x" + h


# --------------------------------------------------------------------------- books


def check_books_txs(chain_txs: Sequence[ChainTx], booked_hashes: Iterable[str], contract: str) -> Verdict:
    """``booked_hashes``: the tx hash of every result row in the books (all-zero for results that
    mined nothing)."""
    v = Verdict("books: every on-chain transaction once")
    booked = Counter(norm_hash(h) for h in booked_hashes)
    booked.pop("0x" + "00" * 32, None)
    on_chain = {t.tx_hash for t in chain_txs}
    arb = sum(1 for t in chain_txs if t.to == contract.lower())
    missing = [t.tx_hash for t in chain_txs if booked[t.tx_hash] == 0]
    twice = [f"{t.tx_hash} x{booked[t.tx_hash]}" for t in chain_txs if booked[t.tx_hash] > 1]
    phantom = sorted(h for h in booked if h not in on_chain)
    if missing:
        v.fail(f"{len(missing)} signer transaction(s) on chain not in the books: {_shown(missing)}")
    if twice:
        v.fail(f"{len(twice)} transaction(s) booked more than once: {_shown(twice)}")
    if phantom:
        v.fail(f"{len(phantom)} booked transaction(s) not on chain: {_shown(phantom)}")
    v.lost = len(missing)
    v.duplicated = sum(booked[t.tx_hash] - 1 for t in chain_txs if booked[t.tx_hash] > 1)
    v.summary = (f"{len(chain_txs)} signer transaction(s) on chain ({arb} to our contract, "
                 f"{sum(1 for t in chain_txs if t.status == 1)} succeeded), {sum(booked.values())} booked")
    return v


def check_balances(books: Mapping[int, int], chain_deltas: Mapping[int, int], names: Mapping[int, str]) -> Verdict:
    """``books``: token id -> the books' balance; ``chain_deltas``: token id -> the change on chain
    since the start. Every token of either side must agree to the wei."""
    v = Verdict("books = chain balances")
    parts = []
    for token in sorted(set(books) | set(chain_deltas)):
        b, c = books.get(token, 0), chain_deltas.get(token, 0)
        name = names.get(token, hex(token))
        parts.append(f"{name} {b}")
        if b != c:
            v.fail(f"{name}: books {b}, chain {c} (difference {c - b} wei)")
    v.summary = "to the wei: " + ", ".join(parts) if v.ok else "books and chain differ"
    return v


# --------------------------------------------------------------------------- outcomes


def check_outcomes(signal_ids: Sequence[int], result_ids: Sequence[int]) -> Verdict:
    """``signal_ids``: every signal published (in relay order); ``result_ids``: the signal id of every
    ``ExecutionResult`` on the execution relay."""
    v = Verdict("one outcome per signal")
    results = Counter(result_ids)
    published = Counter(signal_ids)
    reused = [s for s, n in published.items() if n > 1]
    none = [s for s in published if results[s] == 0]
    many = [f"{s} x{results[s]}" for s in published if results[s] > 1]
    unknown = [s for s in results if s not in published]
    if reused:
        v.fail(f"{len(reused)} signal id(s) published more than once: {_shown(reused)}")
    if none:
        v.fail(f"{len(none)} signal(s) without an outcome: {_shown(none)}")
    if many:
        v.fail(f"{len(many)} signal(s) with more than one outcome: {_shown(many)}")
    if unknown:
        v.fail(f"{len(unknown)} outcome(s) for signals never published: {_shown(unknown)}")
    v.lost = len(none)
    v.duplicated = sum(n - 1 for n in results.values() if n > 1)
    v.summary = f"{len(published)} signal(s), {len(result_ids)} outcome(s)"
    return v


# --------------------------------------------------------------------------- nonces


@dataclass(frozen=True, slots=True)
class StoreTx:
    tx_hash: str
    nonce: int
    status: str
    signal_id: int


def check_nonces(chain_txs: Sequence[ChainTx], store: Sequence[StoreTx]) -> Verdict:
    v = Verdict("no nonce used twice")
    by_nonce: dict[int, list[StoreTx]] = {}
    for row in store:
        by_nonce.setdefault(row.nonce, []).append(row)
    shared = [f"{n} (signals {sorted({r.signal_id for r in rows})})" for n, rows in sorted(by_nonce.items())
              if len({r.signal_id for r in rows}) > 1]
    mined_twice = [n for n, rows in sorted(by_nonce.items()) if sum(r.status == "mined" for r in rows) > 1]
    if shared:
        v.fail(f"{len(shared)} nonce(s) given to more than one signal: {_shown(shared)}")
    if mined_twice:
        v.fail(f"{len(mined_twice)} nonce(s) with two mined transactions in the store: {_shown(mined_twice)}")
    chain_nonces = Counter(t.nonce for t in chain_txs)
    if any(n > 1 for n in chain_nonces.values()):
        v.fail(f"the chain shows a nonce twice: {_shown(n for n, c in chain_nonces.items() if c > 1)}")
    store_by_hash = {norm_hash(r.tx_hash): r for r in store}
    unknown = [t.tx_hash for t in chain_txs if t.tx_hash not in store_by_hash]
    wrong = [f"{t.tx_hash} (store: nonce {store_by_hash[t.tx_hash].nonce}, {store_by_hash[t.tx_hash].status})"
             for t in chain_txs if t.tx_hash in store_by_hash
             and (store_by_hash[t.tx_hash].nonce != t.nonce or store_by_hash[t.tx_hash].status != "mined")]
    on_chain = {t.tx_hash for t in chain_txs}
    ghost = [norm_hash(r.tx_hash) for r in store if r.status == "mined" and norm_hash(r.tx_hash) not in on_chain]
    if unknown:
        v.fail(f"{len(unknown)} signer transaction(s) on chain the store never signed: {_shown(unknown)}")
    if wrong:
        v.fail(f"{len(wrong)} on-chain transaction(s) not recorded as mined under their nonce: {_shown(wrong)}")
    if ghost:
        v.fail(f"{len(ghost)} transaction(s) the store calls mined are not on chain: {_shown(ghost)}")
    nonces = sorted(chain_nonces)
    span = f"nonces {nonces[0]}..{nonces[-1]}" if nonces else "no nonces"
    v.summary = f"{len(store)} signed transaction(s) in the store over {len(by_nonce)} nonce(s); chain {span}"
    return v


# --------------------------------------------------------------------------- archives


@dataclass(frozen=True, slots=True)
class RelayStart:
    """One start of a relay, from its log line ``relay: epoch E, head H, ...``."""

    epoch: int
    head: int


def check_archive(domain: str, seq_counts: Mapping[int, int], head: int, gaps: Sequence[Mapping[str, Any]],
                  starts: Sequence[RelayStart], resyncs_logged: int) -> Verdict:
    """``seq_counts``: domain_seq -> rows holding it in the archive; ``head``: the relay's head when the
    system was stopped; ``gaps``: the archiver's ``_gaps.jsonl`` records; ``starts``: the relay's starts
    in order; ``resyncs_logged``: Resync lines in the relay's log."""
    v = Verdict(f"archive {domain}: contiguous per epoch")
    dup = {s: n for s, n in seq_counts.items() if n > 1}
    if dup:
        v.fail(f"{len(dup)} sequence(s) archived more than once: {_shown(sorted(dup))}")
    beyond = sorted(s for s in seq_counts if s > head or s < 1)
    if beyond:
        v.fail(f"{len(beyond)} archived sequence(s) outside 1..{head}: {_shown(beyond)}")
    explained: set[int] = set()
    for g in gaps:
        explained.update(range(int(g["from_seq"]), int(g["to_seq"]) + 1))
    missing = [s for s in range(1, head + 1) if s not in seq_counts]
    unexplained = [s for s in missing if s not in explained]
    if unexplained:
        v.fail(f"{len(unexplained)} sequence(s) missing with no recorded gap: {_shown(_ranges(unexplained))}")
    if missing and len(unexplained) < len(missing) and not resyncs_logged:
        v.fail(f"{len(missing) - len(unexplained)} sequence(s) recorded as gaps, but the relay logged no Resync")
    epochs = [s.epoch for s in starts]
    if any(b <= a for a, b in zip(epochs, epochs[1:])):
        v.fail(f"epochs do not strictly increase over the relay's starts: {epochs}")
    rewinds = {int(g["from_seq"]) for g in gaps if g.get("kind") == "rewind"}
    for a, b in zip(starts, starts[1:]):
        if b.head < a.head and not any(b.head < r <= a.head for r in rewinds):
            v.fail(f"epoch {b.epoch} started at head {b.head}, below epoch {a.epoch}'s {a.head}, and no rewind "
                   f"was recorded")
    per_epoch = []
    bounds = [*(s.head for s in starts[1:]), head]
    for s, end in zip(starts, bounds):
        if end <= s.head:  # nothing new in this epoch (the relay was killed again before any message)
            per_epoch.append(f"{s.epoch}:-")
            continue
        lost = sum(1 for q in range(s.head + 1, end + 1) if q not in seq_counts)
        per_epoch.append(f"{s.epoch}:{s.head + 1}..{end}" + (f"(-{lost})" if lost else ""))
    v.lost = len(missing)
    v.duplicated = sum(n - 1 for n in dup.values())
    v.summary = (f"{len(seq_counts)} sequence(s) of 1..{head}, {len(gaps)} recorded gap(s), {len(starts)} epoch(s)"
                 + (f" [{' '.join(per_epoch[-8:])}]" if per_epoch else ""))
    return v


def _ranges(seqs: Sequence[int]) -> list[str]:
    out: list[str] = []
    start = prev = None
    for s in seqs:
        if prev is not None and s == prev + 1:
            prev = s
            continue
        if start is not None:
            out.append(f"{start}..{prev}" if start != prev else str(start))
        start = prev = s
    if start is not None:
        out.append(f"{start}..{prev}" if start != prev else str(start))
    return out
