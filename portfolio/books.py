"""The books: SQLite (stdlib sqlite3, WAL) holding balances, the execution history and prices.

Theory of operation
-------------------
``Books.apply(domain, msgs)`` applies a batch of one relay's messages in ONE transaction that
also stores that relay's last applied ``domain_seq`` (table ``cursor``). A ``kill -9`` at any
point leaves either the whole batch with its cursor or neither, so a restarted process that
subscribes from ``cursor + 1`` applies every message exactly once: nothing twice, nothing
skipped. Messages at or below the cursor are ignored (belt and braces).

Bookkeeping (all amounts integer base units, stored as decimal TEXT: i256 does not fit in
SQLite's INTEGER):

* an ``ExecutionResult`` is recorded once per ``signal_id`` (a signal ends with exactly one
  outcome). The same result again is a duplicate (ignored, counted); a different outcome for a
  recorded signal, an unknown outcome code, a profit token on another chain, or a realized
  profit on an outcome that realizes none is rejected into ``rejects`` with the reason;
* EXECUTED books ``realized_profit`` into the profit token; any outcome except SIMULATED
  books ``-gas_used * effective_gas_price`` into the chain's native coin (token address 0);
* every ledger row carries its value in the chain's valuation token at booking time
  (``value``; NULL when no price was known) -- realized P&L in valuation terms is the sum of
  values, and unrealized P&L is today's value of a balance minus the values it was booked at;
* CEX-DEX signals (``specs/cex-legs.md``) move inventory on two venues, so the **venue is a dimension**:
  every ``CexFill`` books the exchange's base and quote assets (``cex_balances``, keyed by venue and the
  venue's asset name; a BUY adds base and spends quote, fee included), the ``LegReport`` that comes with
  the result books the DEX leg's two tokens on chain (``balances``), and the result itself books only its
  gas -- its realized profit is the sum of those legs, booked once. Ledger rows carry their ``venue`` (0:
  the chain) and, for an exchange, its ``asset``; each is valued through the chain token the executor
  trades the same asset as, so :meth:`Books.pnl_by_venue` gives the realized P&L per venue;
* cross-chain signals (``specs/protocol.md``, ``ChainLegReport``) move inventory on two chains: each leg's
  report books that chain's tokens by its realized amounts (``token_in`` down by ``amount_in`` and
  ``token_out`` up by ``amount_out`` when the swap EXECUTED; the unwind back when it EXECUTED) and its gas
  (``gas_used * effective_gas_price + unwind_gas_cost``) in that chain's native coin; the result then books
  nothing more (its net value is the sum of both legs' rows, in each chain's valuation token; the base the
  destination leg sold is valued at what the source leg bought it for, so a trade's value is the quote it
  made less both gases and the two chains' price gap stays in the inventory's unrealized P&L). A leg is
  booked once per ``(signal_id, leg)`` (table ``chain_legs``); ``balances_by_chain`` groups the balances;
* bridge transfers (``BridgeTransfer``, the rebalancer's, table ``bridge_transfers``, one row per transfer
  keyed as the spec dedupes: ``(src_chain, nonce)``, or ``(src_chain, transfer_id)`` for one never numbered).
  SENT books ``-amount`` of the source token on the source chain (``bridge_out``) and the same amount as
  **in flight** (``bridge_in_flight`` rows of the destination token, in the ledger but not in ``balances``,
  so the value stays in the books while it travels); COMPLETED reverses the in-flight row and books the
  ``amount`` arriving on the destination (``bridge_in``) less its ``fee`` (``bridge_fee``, a cost): the
  destination balance grows by ``received``. The rebalancer's own gas (``src_gas_cost``) is booked as
  ``bridge_gas`` in the source chain's native coin when first reported (and any later increase). A state
  already booked, or one older than the row's, is a duplicate (counted, ignored); REFUSED and FAILED book
  only their gas (nothing reached the bridge);
* pool prices (token1 per token0, Q64.96) from V2 reserves, V3 swaps/initialize and snapshots;
* ``ExecutionStarted`` and the signal's identity/economics are history, linked by
  ``signal_id``.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from market.prices import convert_q96, pool_price_q96
from protocol.execution import (
    NO_NONCE,
    BridgeTransfer,
    BridgeTransferState,
    CexFill,
    ChainLeg,
    ChainLegReport,
    DexLegResult,
    ExecutionResult,
    ExecutionStarted,
    LegReport,
    Outcome,
)
from protocol.header import Domain
from protocol.ids import PoolId, TokenId, Venue, code_name
from protocol.market import Side
from protocol.message import Message
from protocol.signals import ArbitragePath, Economics, SignalIdentity
from runtime.files import open_sqlite, open_sqlite_readonly
from runtime.paths import run_dir

log = logging.getLogger("portfolio.books")

SCHEMA = """
CREATE TABLE IF NOT EXISTS cursor (domain INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS signals (
    signal_id INTEGER PRIMARY KEY, strategy_id INTEGER, strategy TEXT, kind INTEGER, chain_id INTEGER,
    block_number INTEGER, detected_ns INTEGER, profit_token TEXT, gross_profit TEXT, gas_cost TEXT,
    net_profit TEXT, token_in TEXT, amount_in TEXT, hops INTEGER, seq INTEGER);
CREATE TABLE IF NOT EXISTS started (
    signal_id INTEGER PRIMARY KEY, chain_id INTEGER, mode INTEGER, nonce INTEGER, tx_hash TEXT,
    max_fee_per_gas TEXT, max_priority_fee_per_gas TEXT, gas_limit INTEGER, at_ns INTEGER, seq INTEGER);
CREATE TABLE IF NOT EXISTS results (
    signal_id INTEGER PRIMARY KEY, chain_id INTEGER, outcome INTEGER, block_number INTEGER, tx_hash TEXT,
    gas_used INTEGER, effective_gas_price TEXT, gas_wei TEXT, expected_profit TEXT, realized_profit TEXT,
    profit_token TEXT, reason TEXT, at_ns INTEGER, seq INTEGER, net_value TEXT);
CREATE TABLE IF NOT EXISTS ledger (
    id INTEGER PRIMARY KEY AUTOINCREMENT, signal_id INTEGER, chain_id INTEGER, token TEXT, delta TEXT,
    kind TEXT, value TEXT, at_ns INTEGER);
CREATE TABLE IF NOT EXISTS balances (token TEXT PRIMARY KEY, chain_id INTEGER, amount TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cex_balances (
    venue INTEGER NOT NULL, asset TEXT NOT NULL, token TEXT, amount TEXT NOT NULL, PRIMARY KEY (venue, asset));
CREATE TABLE IF NOT EXISTS prices (
    pool TEXT PRIMARY KEY, chain_id INTEGER, token0 TEXT, token1 TEXT, price_q96 TEXT, block_number INTEGER,
    at_ns INTEGER);
CREATE TABLE IF NOT EXISTS rejects (
    id INTEGER PRIMARY KEY AUTOINCREMENT, domain INTEGER, seq INTEGER, signal_id INTEGER, reason TEXT,
    at_ns INTEGER);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS chain_legs (
    signal_id INTEGER NOT NULL, leg INTEGER NOT NULL, chain_id INTEGER, outcome INTEGER, result INTEGER,
    unwind_result INTEGER, token_in TEXT, token_out TEXT, amount_in TEXT, amount_out TEXT, unwind_amount_in TEXT,
    unwind_amount_out TEXT, gas_wei TEXT, left_open TEXT, tx_hash TEXT, reason TEXT, at_ns INTEGER, seq INTEGER,
    PRIMARY KEY (signal_id, leg));
CREATE TABLE IF NOT EXISTS bridge_transfers (
    src_chain INTEGER NOT NULL, tkey TEXT NOT NULL, transfer_id INTEGER, state INTEGER, dst_chain INTEGER,
    bridge INTEGER, nonce TEXT, src_token TEXT, dst_token TEXT, amount TEXT, fee TEXT, received TEXT,
    gas_booked TEXT, flight_value TEXT, src_tx_hash TEXT, dst_tx_hash TEXT, sent_ns INTEGER, completed_ns INTEGER,
    reason TEXT, at_ns INTEGER, seq INTEGER, PRIMARY KEY (src_chain, tkey));
CREATE INDEX IF NOT EXISTS ledger_token ON ledger(token);
CREATE INDEX IF NOT EXISTS results_at ON results(at_ns);
"""

# outcomes that never realize a profit (SIMULATED's profit is what it would have made; a CEX-DEX leg that was
# unwound, or left open after a partial unwind, realized what its orders did)
NO_PROFIT = frozenset(int(o) for o in Outcome) - {int(Outcome.EXECUTED), int(Outcome.SIMULATED),
                                                  int(Outcome.UNWOUND), int(Outcome.LEG_OPEN)}
# ledger columns added after the first release: (name, declaration), added to an older file at open
_LEDGER_ADDED = (("venue", "INTEGER NOT NULL DEFAULT 0"), ("asset", "TEXT NOT NULL DEFAULT ''"))


def default_db_path() -> Path:
    """The books' SQLite file unless the configuration or ``--db`` names one."""
    return run_dir() / "data" / "portfolio.sqlite"


def open_db(path: str | Path) -> sqlite3.Connection:
    db = open_sqlite(path, SCHEMA)
    have = {row[1] for row in db.execute("PRAGMA table_info(ledger)")}
    for name, decl in _LEDGER_ADDED:
        if name not in have:
            db.execute(f"ALTER TABLE ledger ADD COLUMN {name} {decl}")
    return db


def open_db_readonly(path: str | Path) -> sqlite3.Connection:
    """The books opened read-only for a report (``alphapulse report``/``history``/``balance``): a file
    that is not sound portfolio books is a ``BadFile`` naming it (``runtime.files``)."""
    return open_sqlite_readonly(path, tables=("signals", "results", "balances"), what="portfolio database")


def native_token(chain_id: int) -> int:
    return chain_id << 160


class Books:
    def __init__(self, db: sqlite3.Connection, valuation: dict[int, tuple[int, int]] | None = None) -> None:
        self.db = db
        self.valuation = valuation or {}

    # ---- cursor ----

    def last_seq(self, domain: int) -> int:
        row = self.db.execute("SELECT last_seq FROM cursor WHERE domain = ?", (int(domain),)).fetchone()
        return int(row[0]) if row else 0

    def position(self, domain: int) -> int | None:
        """The relay's last applied sequence, or None when the books never started on it."""
        row = self.db.execute("SELECT last_seq FROM cursor WHERE domain = ?", (int(domain),)).fetchone()
        return int(row[0]) if row else None

    def start_at(self, domain: int, seq: int) -> None:
        """Record where a fresh start on ``domain`` began (before any message of it is applied)."""
        self.db.execute("INSERT OR IGNORE INTO cursor(domain, last_seq) VALUES (?, ?)", (int(domain), seq))

    # ---- applying ----

    def apply(self, domain: int, msgs: Iterable[Message], now_ns: int = 0) -> int:
        """Apply one relay's messages and advance its cursor, atomically. Returns how many applied."""
        db = self.db
        applied = 0
        db.execute("BEGIN IMMEDIATE")
        try:
            last = self.last_seq(domain)
            for msg in msgs:
                if msg.domain_seq and msg.domain_seq <= last:
                    continue  # already applied (a resume overlapping the cursor)
                self._apply_one(domain, msg, now_ns)
                applied += 1
                last = max(last, msg.domain_seq)
            db.execute("INSERT OR REPLACE INTO cursor(domain, last_seq) VALUES (?, ?)", (int(domain), last))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return applied

    def _apply_one(self, domain: int, msg: Message, now_ns: int) -> None:
        at = msg.event_time_ns or msg.receive_time_ns or now_ns
        if domain == Domain.MARKET_DATA:
            for t in msg.tlvs:
                pp = pool_price_q96(t)
                if pp is not None:
                    pool, price = pp
                    self.db.execute(
                        "INSERT OR REPLACE INTO prices VALUES (?,?,?,?,?,?,?)",
                        (str(int(pool)), pool.chain_id, str(int(pool.token0)), str(int(pool.token1)), str(price),
                         getattr(t, "block_number", 0), at),
                    )
        elif domain == Domain.SIGNAL:
            self._signal(msg, at)
        elif domain == Domain.EXECUTION:
            legs = next((t for t in msg.tlvs if type(t) is LegReport), None)
            chain_legs = [t for t in msg.tlvs if type(t) is ChainLegReport]
            legs_value: int | None = 0
            if legs is not None:  # before its result: the result's net value includes the legs
                legs_value = self._legs(legs, at)
            if chain_legs:
                self._chain_legs(chain_legs, msg.domain_seq, at)
            for t in msg.tlvs:
                tp = type(t)
                if tp is ExecutionResult:
                    if chain_legs:
                        self._result(t, msg.domain_seq, at, legs=True, legs_value=self._signal_value(t.signal_id),
                                     chain_legs=True)
                    elif legs is None:
                        self._result(t, msg.domain_seq, at)
                    else:
                        self._result(t, msg.domain_seq, at, legs=True, legs_value=legs_value)
                elif tp is BridgeTransfer:
                    self._bridge(t, msg.domain_seq, at)
                elif tp is CexFill:
                    self._fill(t, at)
                elif tp is ExecutionStarted:
                    cur = self.db.execute(
                        "INSERT OR IGNORE INTO started VALUES (?,?,?,?,?,?,?,?,?,?)",
                        (t.signal_id, t.chain_id, t.mode, t.nonce, t.tx_hash.hex(), str(t.max_fee_per_gas),
                         str(t.max_priority_fee_per_gas), t.gas_limit, at, msg.domain_seq),
                    )
                    if not cur.rowcount:
                        self._count("duplicate_started")

    def _signal(self, msg: Message, at: int) -> None:
        ident = msg.find(SignalIdentity)
        if ident is None:
            return
        econ = msg.find(Economics)
        path = msg.find(ArbitragePath)
        hop = path.hops[0] if path is not None and path.hops else None
        self.db.execute(
            "INSERT OR IGNORE INTO signals VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (ident.signal_id, ident.strategy_id, ident.strategy, ident.kind, ident.chain_id, ident.block_number, at,
             str(int(econ.profit_token)) if econ else None, str(econ.gross_profit) if econ else None,
             str(econ.gas_cost) if econ else None, str(econ.net_profit) if econ else None,
             "0x" + hop.token_in.hex() if hop else None, str(hop.amount_in) if hop else None,
             len(path.hops) if path else 0, msg.domain_seq),
        )

    def _reject(self, domain: int, seq: int, signal_id: int, reason: str, at: int) -> None:
        log.warning("rejected %s seq %d (signal %d): %s", Domain(domain).name.lower(), seq, signal_id, reason)
        self.db.execute("INSERT INTO rejects(domain, seq, signal_id, reason, at_ns) VALUES (?,?,?,?,?)",
                        (int(domain), seq, signal_id, reason, at))

    def _count(self, name: str) -> None:
        self.db.execute("INSERT INTO counters VALUES (?, 1) ON CONFLICT(name) DO UPDATE SET value = value + 1",
                        (name,))

    def _fill(self, t: CexFill, at: int) -> None:
        """One exchange order's fill: its base and quote assets on that venue."""
        if not t.base_units:
            return
        sign = 1 if t.side == Side.BUY else -1
        chain = TokenId(t.base_token).chain_id
        self._book_cex(t.signal_id, t.venue, t.base_asset, int(t.base_token), chain, sign * t.base_units, at)
        self._book_cex(t.signal_id, t.venue, t.quote_asset, int(t.quote_token), chain, -sign * t.quote_units, at)

    def _legs(self, t: LegReport, at: int) -> int | None:
        """The DEX leg of a CEX-DEX signal on chain; the value of everything the signal's legs booked."""
        chain = TokenId(t.base_token).chain_id
        if t.dex_result == DexLegResult.EXECUTED:
            sign = 1 if t.cex_side == Side.SELL else -1  # after a CEX sale the DEX leg buys the base back
            self._book(t.signal_id, chain, int(t.base_token), sign * t.dex_base, "dex_leg", at)
            self._book(t.signal_id, chain, int(t.quote_token), -sign * t.dex_quote, "dex_leg", at)
        values = [v for (v,) in self.db.execute(
            "SELECT value FROM ledger WHERE signal_id = ? AND kind IN ('dex_leg', 'cex_fill')", (t.signal_id,))]
        return None if any(v is None for v in values) else sum(int(v) for v in values)

    def _book_cex(self, signal_id: int, venue: int, asset: str, token: int, chain_id: int, delta: int, at: int) -> None:
        value = self.value_of(chain_id, token, delta)
        self.db.execute(
            "INSERT INTO ledger(signal_id, chain_id, token, delta, kind, value, at_ns, venue, asset) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            (signal_id, chain_id, str(token), str(delta), "cex_fill", None if value is None else str(value), at, venue,
             asset))
        row = self.db.execute("SELECT amount FROM cex_balances WHERE venue = ? AND asset = ?", (venue, asset)).fetchone()
        amount = (int(row[0]) if row else 0) + delta
        self.db.execute("INSERT OR REPLACE INTO cex_balances VALUES (?,?,?,?)", (venue, asset, str(token), str(amount)))

    def _result(self, t: ExecutionResult, seq: int, at: int, *, legs: bool = False,
                legs_value: int | None = 0, chain_legs: bool = False) -> None:
        db = self.db
        ex = Domain.EXECUTION
        prev = db.execute("SELECT outcome, realized_profit, gas_used FROM results WHERE signal_id = ?",
                          (t.signal_id,)).fetchone()
        if prev is not None:
            if prev == (t.outcome, str(t.realized_profit), t.gas_used):
                self._count("duplicate_results")
                log.info("duplicate result for signal %d ignored", t.signal_id)
            else:
                self._reject(ex, seq, t.signal_id, f"conflicting result: signal already ended with outcome {prev[0]}, "
                                                   f"got outcome {t.outcome}", at)
            return
        if t.outcome not in Outcome._value2member_map_:
            return self._reject(ex, seq, t.signal_id, f"unknown outcome code {t.outcome}", at)
        token = TokenId(t.profit_token)
        if token.chain_id != t.chain_id:
            return self._reject(ex, seq, t.signal_id,
                                f"profit token is on chain {token.chain_id}, the result on chain {t.chain_id}", at)
        if t.outcome in NO_PROFIT and t.realized_profit:
            return self._reject(ex, seq, t.signal_id,
                                f"outcome {Outcome(t.outcome).name} cannot realize a profit ({t.realized_profit})", at)
        gas_wei = t.gas_used * t.effective_gas_price if t.outcome != Outcome.SIMULATED else 0
        net_value: int | None = legs_value if legs else 0
        if chain_legs:  # each leg booked its own chain's gas: the result's record is both legs' wei, booked there
            gas_wei = sum(int(g) for (g,) in db.execute("SELECT gas_wei FROM chain_legs WHERE signal_id = ?",
                                                        (t.signal_id,)))
            db.execute(
                "INSERT INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (t.signal_id, t.chain_id, t.outcome, t.block_number, t.tx_hash.hex(), t.gas_used,
                 str(t.effective_gas_price), str(gas_wei), str(t.expected_profit), str(t.realized_profit),
                 str(int(token)), t.reason, at, seq, None if net_value is None else str(net_value)))
            return
        if t.outcome == Outcome.EXECUTED and t.realized_profit and not legs:  # CEX-DEX: the legs are booked
            v = self._book(t.signal_id, t.chain_id, int(token), t.realized_profit, "profit", at)
            net_value = None if v is None else net_value + v  # type: ignore[operator]
        if gas_wei:
            v = self._book(t.signal_id, t.chain_id, native_token(t.chain_id), -gas_wei, "gas", at)
            net_value = None if v is None or net_value is None else net_value + v
        db.execute(
            "INSERT INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (t.signal_id, t.chain_id, t.outcome, t.block_number, t.tx_hash.hex(), t.gas_used,
             str(t.effective_gas_price), str(gas_wei), str(t.expected_profit), str(t.realized_profit), str(int(token)),
             t.reason, at, seq, None if net_value is None else str(net_value)),
        )

    def _book(self, signal_id: int, chain_id: int, token: int, delta: int, kind: str, at: int,
              *, value: int | None | bool = True, held: bool = True) -> int | None:
        """One ledger row, valued now (or at ``value`` when given), moving ``balances`` unless not ``held``."""
        if value is True:
            value = self.value_of(chain_id, token, delta)
        self.db.execute(
            "INSERT INTO ledger(signal_id, chain_id, token, delta, kind, value, at_ns) VALUES (?,?,?,?,?,?,?)",
            (signal_id, chain_id, str(token), str(delta), kind, None if value is None else str(value), at),
        )
        if not held:
            return value
        row = self.db.execute("SELECT amount FROM balances WHERE token = ?", (str(token),)).fetchone()
        amount = (int(row[0]) if row else 0) + delta
        self.db.execute("INSERT OR REPLACE INTO balances VALUES (?,?,?)", (str(token), chain_id, str(amount)))
        return value

    def _signal_value(self, signal_id: int) -> int | None:
        """The value of everything booked for a signal so far (None when a row had no price)."""
        values = [v for (v,) in self.db.execute("SELECT value FROM ledger WHERE signal_id = ?", (signal_id,))]
        return None if any(v is None for v in values) else sum(int(v) for v in values)

    def _chain_legs(self, legs: list[ChainLegReport], seq: int, at: int) -> None:
        """A cross-chain signal's legs, each on its own chain, once per (signal, leg). The base the source leg
        bought and the destination leg sold is one asset on two chains, and so is the quote the source leg
        spent and the destination leg received: the destination leg's ``token_in`` is valued at what the
        source leg's ``token_out`` was booked at, and its ``token_out`` at what the source leg's ``token_in``
        was (each pro rata). So the trade's value is the quote it made less gas, at one price -- not the two
        chains' price gap (valuing each chain's quote at its own chain's price once made profitable trades
        read as losses), which stays in the inventory's unrealized P&L."""
        carry: tuple[tuple[int, int] | None, tuple[int, int] | None] = (None, None)
        for t in sorted(legs, key=lambda x: x.leg):
            booked = self._chain_leg(t, seq, at, carry if t.leg == ChainLeg.DESTINATION else (None, None))
            if t.leg == ChainLeg.SOURCE:
                carry = booked

    def _chain_leg(self, t: ChainLegReport, seq: int, at: int,
                   carry: tuple[tuple[int, int] | None, tuple[int, int] | None]
                   ) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
        """One leg; returns ((amount, value) of the token_out its swap booked, (amount, value) of the token_in
        it spent), each None when it did not swap or the row had no price. ``carry`` is the source leg's."""
        gas = t.gas_used * t.effective_gas_price + t.unwind_gas_cost if t.outcome != Outcome.SIMULATED else 0
        cur = self.db.execute(
            "INSERT OR IGNORE INTO chain_legs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (t.signal_id, t.leg, t.chain_id, t.outcome, t.result, t.unwind_result, str(int(t.token_in)),
             str(int(t.token_out)), str(t.amount_in), str(t.amount_out), str(t.unwind_amount_in),
             str(t.unwind_amount_out), str(gas), str(t.left_open), t.tx_hash.hex(), t.reason, at, seq))
        if not cur.rowcount:
            self._count("duplicate_chain_legs")
            return None, None
        chain, tin, tout = t.chain_id, int(t.token_in), int(t.token_out)
        if TokenId(tin).chain_id != chain or TokenId(tout).chain_id != chain:
            self._reject(Domain.EXECUTION, seq, t.signal_id,
                         f"leg {t.leg} on chain {chain} names tokens of chains {TokenId(tin).chain_id} and "
                         f"{TokenId(tout).chain_id}", at)
            return None, None
        out: tuple[int, int] | None = None
        spent: tuple[int, int] | None = None
        if t.result == DexLegResult.EXECUTED:
            base_value, quote_value = carry
            carried_in: int | None | bool = True
            if base_value is not None and base_value[0]:
                carried_in = -(base_value[1] * t.amount_in // base_value[0])
            carried_out: int | None | bool = True
            if quote_value is not None and quote_value[0]:
                carried_out = quote_value[1] * t.amount_out // quote_value[0]
            vin = self._book(t.signal_id, chain, tin, -t.amount_in, "xchain_leg", at, value=carried_in)
            v = self._book(t.signal_id, chain, tout, t.amount_out, "xchain_leg", at, value=carried_out)
            out = None if v is None else (t.amount_out, v)
            spent = None if vin is None else (t.amount_in, -vin)
        if t.unwind_result == DexLegResult.EXECUTED:
            self._book(t.signal_id, chain, tout, -t.unwind_amount_in, "xchain_unwind", at)
            self._book(t.signal_id, chain, tin, t.unwind_amount_out, "xchain_unwind", at)
        if gas:
            self._book(t.signal_id, chain, native_token(chain), -gas, "gas", at)
        return out, spent

    def _bridge(self, t: BridgeTransfer, seq: int, at: int) -> None:
        """One state of a bridge transfer (module docstring): booked once, in order SENT -> COMPLETED."""
        db, ex = self.db, Domain.EXECUTION
        state = t.state
        if state not in BridgeTransferState._value2member_map_:
            return self._reject(ex, seq, 0, f"bridge transfer {t.transfer_id}: unknown state {state}", at)
        src, dst = int(t.src_token), int(t.dst_token)
        if TokenId(src).chain_id != t.src_chain or TokenId(dst).chain_id != t.dst_chain:
            return self._reject(ex, seq, 0, f"bridge transfer {t.transfer_id}: tokens on chains "
                                            f"{TokenId(src).chain_id} -> {TokenId(dst).chain_id}, transfer "
                                            f"{t.src_chain} -> {t.dst_chain}", at)
        if state == BridgeTransferState.COMPLETED and t.received + t.fee != t.amount:
            return self._reject(ex, seq, 0, f"bridge transfer {t.transfer_id}: received {t.received} + fee {t.fee} "
                                            f"!= amount {t.amount}", at)
        tkey = f"n{t.nonce}" if t.nonce != NO_NONCE else f"t{t.transfer_id}"
        row = db.execute("SELECT state, gas_booked, flight_value FROM bridge_transfers WHERE src_chain = ? AND tkey = ?",
                         (t.src_chain, tkey)).fetchone()
        prev, gas_booked = (int(row[0]), int(row[1])) if row else (0, 0)
        flight: int | None = int(row[2]) if row and row[2] is not None else None
        # SENT=1 < COMPLETED=2; REFUSED / FAILED end a transfer that never left
        if row is not None and (state == prev or prev != BridgeTransferState.SENT):
            self._count("duplicate_bridge_transfers")
            return
        if state == BridgeTransferState.SENT or (state == BridgeTransferState.COMPLETED and not row):
            self._book(0, t.src_chain, src, -t.amount, "bridge_out", at)  # a COMPLETED first: its SENT was missed
            flight = self.value_of(t.src_chain, src, t.amount)  # in flight at what it was worth when it left
            self._book(0, t.dst_chain, dst, t.amount, "bridge_in_flight", at, value=flight, held=False)
        if state == BridgeTransferState.COMPLETED:
            self._book(0, t.dst_chain, dst, -t.amount, "bridge_in_flight", at,
                       value=None if flight is None else -flight, held=False)
            self._book(0, t.dst_chain, dst, t.amount, "bridge_in", at)
            if t.fee:
                self._book(0, t.dst_chain, dst, -t.fee, "bridge_fee", at)
        if t.src_gas_cost > gas_booked:
            self._book(0, t.src_chain, native_token(t.src_chain), gas_booked - t.src_gas_cost, "bridge_gas", at)
            gas_booked = t.src_gas_cost
        db.execute(
            "INSERT OR REPLACE INTO bridge_transfers VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (t.src_chain, tkey, t.transfer_id, state, t.dst_chain, t.bridge, str(t.nonce), str(src), str(dst),
             str(t.amount), str(t.fee), str(t.received), str(gas_booked), None if flight is None else str(flight),
             t.src_tx_hash.hex(), t.dst_tx_hash.hex(), t.sent_time_ns, t.completed_time_ns, t.reason, at, seq))

    def book_adjustment(self, chain_id: int, token: int, delta: int, at: int, kind: str = "reconcile") -> None:
        """An operator adjustment (reconcile --apply), in its own transaction."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self._book(0, chain_id, token, delta, kind, at)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    # ---- valuation ----

    def value_of(self, chain_id: int, token: int, amount: int) -> int | None:
        """``amount`` of ``token`` in the chain's valuation token at the latest pool price (integer)."""
        val, wrapped = self.valuation.get(chain_id, (0, 0))
        if not val:
            return None
        if token == native_token(chain_id) and wrapped:
            token = wrapped
        if token == val:
            return amount
        a, b = (token, val) if token < val else (val, token)
        row = self.db.execute(
            "SELECT price_q96 FROM prices WHERE token0 = ? AND token1 = ? ORDER BY at_ns DESC, block_number DESC LIMIT 1",
            (str(a), str(b)),
        ).fetchone()
        if row is None or not int(row[0]):
            return None
        return convert_q96(amount, int(row[0]), token == a)  # token1 per token0, Q96

    def price_q96(self, pool: int) -> int | None:
        """The latest booked price of ``pool`` (token1 per token0, Q64.96), else the latest of any pool of
        the same two tokens; None when the books saw neither. A ``market.display.PriceSource``."""
        row = self.db.execute("SELECT price_q96 FROM prices WHERE pool = ?", (str(int(pool)),)).fetchone()
        if row is None:
            p = PoolId(int(pool))
            row = self.db.execute(
                "SELECT price_q96 FROM prices WHERE token0 = ? AND token1 = ? ORDER BY at_ns DESC, block_number DESC "
                "LIMIT 1", (str(int(p.token0)), str(int(p.token1)))).fetchone()
        return int(row[0]) if row is not None and int(row[0]) else None

    # ---- reading ----

    def balances(self) -> dict[int, int]:
        """On-chain balances per token id (and the native coin as ``native_token``)."""
        return {int(t): int(a) for t, a in self.db.execute("SELECT token, amount FROM balances ORDER BY token")}

    def _has_venues(self) -> bool:
        """Books written before the venue dimension, opened read-only (a report), lack its columns."""
        return "venue" in {row[1] for row in self.db.execute("PRAGMA table_info(ledger)")}

    def cex_balances(self) -> dict[tuple[int, str], int]:
        """Exchange balances per (venue code, the venue's asset name), as the fills moved them."""
        if not self._has_venues():
            return {}
        return {(int(v), a): int(n) for v, a, n in self.db.execute(
            "SELECT venue, asset, amount FROM cex_balances ORDER BY venue, asset")}

    def cex_balance_tokens(self) -> dict[tuple[int, str], int]:
        """The chain token each exchange balance trades as: its amount is in that token's decimals."""
        if not self._has_venues():
            return {}
        return {(int(v), a): int(t) for v, a, t in self.db.execute("SELECT venue, asset, token FROM cex_balances")}

    def pnl_by_venue(self) -> dict[str, dict[str, Any]]:
        """Realized P&L per venue: ``chain:<id>`` for a chain (its tokens and gas), the exchange's name for
        an exchange, ``in_flight`` for what is on a bridge (sent, not landed: not on any chain); per venue the
        moves per asset and their value in the valuation token (None when a move had no price when it was
        booked)."""
        out: dict[str, dict[str, Any]] = {}
        cols = "venue, chain_id, token, asset" if self._has_venues() else "0, chain_id, token, ''"
        for venue, chain, token, asset, delta, value, kind in self.db.execute(
                f"SELECT {cols}, delta, value, kind FROM ledger ORDER BY id"):
            if kind == "bridge_in_flight":
                key = "in_flight"
            else:
                key = f"chain:{chain}" if not venue else code_name(Venue, venue).lower()
            v = out.setdefault(key, {"by_asset": {}, "realized_value": 0})
            name = asset or str(token)
            v["by_asset"][name] = v["by_asset"].get(name, 0) + int(delta)
            if value is None or v["realized_value"] is None:
                v["realized_value"] = None
            else:
                v["realized_value"] += int(value)
        return out

    def pnl(self) -> dict[str, Any]:
        """Realized P&L per token (native units), realized and unrealized in valuation terms."""
        realized_tokens: dict[int, int] = {}
        cost: dict[int, int] = {}
        unknown_cost: set[int] = set()
        chain_of: dict[int, int] = {}
        venues = self._has_venues()
        for token, delta, value, chain in self.db.execute(
                "SELECT token, delta, value, chain_id FROM ledger" + (" WHERE venue = 0" if venues else "")):
            tk = int(token)
            chain_of[tk] = chain
            realized_tokens[tk] = realized_tokens.get(tk, 0) + int(delta)
            if value is None:
                unknown_cost.add(tk)
            else:
                cost[tk] = cost.get(tk, 0) + int(value)
        realized_value = sum(cost.values())
        for (value,) in self.db.execute("SELECT value FROM ledger WHERE venue != 0") if venues else ():
            realized_value += int(value) if value is not None else 0  # exchanges: realized only
        unrealized = 0
        unpriced = []
        held = self.balances()
        for tk, amount in self.in_flight_by_token().items():  # in flight: still ours, valued where it lands
            held[tk] = held.get(tk, 0) + amount
        for tk, bal in held.items():
            chain = chain_of.get(tk, tk >> 160)
            now = self.value_of(chain, tk, bal)
            if now is None or tk in unknown_cost:
                unpriced.append(tk)
                continue
            unrealized += now - cost.get(tk, 0)
        return {"realized_by_token": realized_tokens, "realized_value": realized_value,
                "unrealized_value": unrealized, "unpriced_tokens": unpriced}

    def balances_by_chain(self) -> dict[int, dict[int, int]]:
        """On-chain balances grouped by chain: ``{chain_id: {token id: amount}}`` (a TokenId names its chain)."""
        out: dict[int, dict[int, int]] = {}
        for tk, amount in self.balances().items():
            out.setdefault(TokenId(tk).chain_id, {})[tk] = amount
        return out

    def _has_bridge(self) -> bool:
        """Books written before cross-chain transfers, opened read-only (a report), lack the table."""
        return self.db.execute("SELECT 1 FROM sqlite_master WHERE name = 'bridge_transfers'").fetchone() is not None

    def bridge_transfers(self) -> list[dict[str, Any]]:
        """Every bridge transfer the books saw, oldest first: its last state and amounts (exact integers)."""
        if not self._has_bridge():
            return []
        cur = self.db.execute("SELECT * FROM bridge_transfers ORDER BY at_ns, seq")
        names = [d[0] for d in cur.description]
        out = []
        for row in cur.fetchall():
            r = dict(zip(names, row))
            r["state_name"] = code_name(BridgeTransferState, r["state"])
            for k in ("amount", "fee", "received", "gas_booked", "src_token", "dst_token"):
                r[k] = int(r[k])
            r["nonce"] = None if int(r["nonce"]) == NO_NONCE else int(r["nonce"])
            r["flight_value"] = None if r["flight_value"] is None else int(r["flight_value"])
            out.append(r)
        return out

    def in_flight_by_token(self) -> dict[int, int]:
        """Amounts sent and not yet landed, per destination token (they left the source chain's balance)."""
        out: dict[int, int] = {}
        if not self._has_bridge():
            return out
        for token, amount in self.db.execute("SELECT dst_token, amount FROM bridge_transfers WHERE state = ?",
                                             (int(BridgeTransferState.SENT),)):
            out[int(token)] = out.get(int(token), 0) + int(amount)
        return out

    def bridge_costs(self) -> dict[str, Any]:
        """What bridging cost: fees per destination token, the rebalancer's gas per source chain (wei), and
        both in the valuation token (None when a row had no price)."""
        fees: dict[int, int] = {}
        gas: dict[int, int] = {}
        value: int | None = 0
        for kind, chain, token, delta, v in self.db.execute(
                "SELECT kind, chain_id, token, delta, value FROM ledger WHERE kind IN ('bridge_fee', 'bridge_gas')"):
            if kind == "bridge_fee":
                fees[int(token)] = fees.get(int(token), 0) - int(delta)
            else:
                gas[chain] = gas.get(chain, 0) - int(delta)
            value = None if v is None or value is None else value + int(v)
        return {"fees_by_token": fees, "gas_wei_by_chain": gas, "value": value}

    def counters(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT name, value FROM counters"))
