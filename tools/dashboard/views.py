"""Model -> rows and text: what each panel shows, as plain strings (no textual import).

The app's widgets only put these into DataTables and Statics, so what the dashboard shows is
testable without a terminal. Every function is bounded by the ``limit`` it is given or by the
model's own caps. Amounts and prices go through ``market.display`` with the token and pool
registry (symbols, decimals applied, prices as quote per base); a token the registry does not
know shows its raw base units, grouped by thousands.

A trade has one figure per stage, each labelled: the *predicted net* (the signal's economics at
detection), the *re-validated gross* (the executor's expected profit, in the result) and the
*realized net* (on chain: realized gross minus the gas paid, the gas converted into the profit token
at the signal's own gas rate). The realized net is the authoritative figure once there is one.
"""

from __future__ import annotations

import time

from market.display import PriceSource, Registry, fmt_units
from portfolio.books import native_token
from protocol.execution import (
    BridgeTransfer,
    BridgeTransferState,
    CexFill,
    CexOrderPurpose,
    ChainLeg,
    ChainLegReport,
    DexLegResult,
    SubmissionMode,
)
from protocol.header import Domain
from protocol.ids import PoolId, TokenId, Venue, VenueKind, code_name, pool_label
from protocol.market import Side
from protocol.signals import SignalKind

from .model import DashboardModel, PoolState, RelayHealth, SignalRecord, outcome_name, realized_net

NO_REGISTRY = Registry()

Row = tuple[str, tuple[str, ...]]  # (row key, cells)

# the price (quote per base) right after the pool: what a trader reads first; the raw state after it
MARKET_COLUMNS = ("pool", "price", "venue", "block", "reserve0 / sqrtPriceX96", "reserve1 / liquidity", "tick",
                  "updates", "state")
SWAP_COLUMNS = ("seq", "block", "pool", "amount0", "amount1", "tx")
# what a trader reads first comes first: the outcome, then the money, then the rest
SIGNAL_COLUMNS = ("status", "net predicted", "signal", "kind", "block", "hops", "gross", "gas", "strategy")
EXECUTION_COLUMNS = ("outcome", "net realized", "realized gross", "signal", "reason", "gas paid", "gas used",
                     "tx", "mode", "nonce", "max fee", "prio fee", "gas limit")
HEALTH_COLUMNS = ("relay", "state", "head", "ours", "lag", "rate/s", "relay rate/s", "msgs", "gaps",
                  "resyncs", "lost", "reconnects", "jumps", "dropped", "consumers", "slowest consumer")


def fmt_int(v: int | None) -> str:
    return "-" if v is None else f"{v:,}"


def short_hex(value: int | bytes | str, head: int = 6, tail: int = 4) -> str:
    if isinstance(value, bytes):
        text = "0x" + value.hex()
    elif isinstance(value, int):
        text = f"0x{value:040x}"
    else:
        text = value
    if len(text) <= head + tail + 1:
        return text
    return f"{text[:head]}…{text[-tail:]}"


def short_id(signal_id: int) -> str:
    """A 19-digit signal id by its last six digits (``…241124``): enough to tell rows apart."""
    return str(signal_id) if signal_id < 10**6 else f"…{signal_id % 10**6:06d}"


def money(reg: Registry, amount: int, token: int) -> str:
    """``amount`` of ``token`` with its symbol and decimals, or the raw base units for a token the
    registry does not know."""
    return reg.amount(amount, token) if token and reg.token(token) else fmt_int(amount)


def exact(reg: Registry, amount: int, token: int) -> str:
    """``amount`` with its symbol and decimals and, beside it, the exact integer of base units."""
    text = money(reg, amount, token)
    return text if not (token and reg.token(token)) else f"{text} ({amount})"


def fmt_token(token: int) -> str:
    if not token:
        return "-"
    t = TokenId(token)
    return short_hex(t.address)


def fmt_address(addr: bytes | int) -> str:
    """An ``address`` field (20 raw bytes on the wire) as short hex."""
    return short_hex(addr if isinstance(addr, bytes) else f"0x{addr:040x}")


def full_address(addr: bytes | int) -> str:
    return "0x" + addr.hex() if isinstance(addr, bytes) else f"0x{addr:040x}"


def venue_name(code: int) -> str:
    return code_name(Venue, code).lower()


def fmt_gwei(wei: int) -> str:
    return f"{wei / 1e9:,.3f} gwei"


def fmt_eth(wei: int) -> str:
    return f"{wei / 1e18:,.6f} ETH"


def fmt_time(ns: int) -> str:
    if not ns:
        return "-"
    return time.strftime("%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + f".{ns // 1_000_000 % 1000:03d}"


def fmt_delta(ns: int) -> str:
    if ns < 1_000_000:
        return f"+{ns / 1e3:.0f} µs"
    if ns < 1_000_000_000:
        return f"+{ns / 1e6:.1f} ms"
    return f"+{ns / 1e9:.2f} s"


def v3_price(sqrt_price_x96: int) -> float:
    """token1 per token0 in base units (display only)."""
    return (sqrt_price_x96 / (1 << 96)) ** 2


def fmt_price(p: PoolState, reg: Registry = NO_REGISTRY) -> str:
    """Quote per base with the registry's symbols and decimals; raw token1 per token0 without them."""
    pid = PoolId(p.pool)
    known = reg.token(int(pid.token0)) and reg.token(int(pid.token1))
    if p.sqrt_price_x96:
        return reg.price_sqrt_x96(pid, p.sqrt_price_x96) if known else f"{v3_price(p.sqrt_price_x96):.6g}"
    if p.reserve0 and p.reserve1 is not None:
        return reg.price(pid, p.reserve1, p.reserve0) if known else f"{p.reserve1 / p.reserve0:.6g}"
    return "-"


def pool_prices(model: DashboardModel) -> PriceSource:
    """The model's latest pool states as a price source for the registry's quote currency (Q64.96 token1
    per token0: sqrtPriceX96 squared, or V2 reserves)."""
    def price(pool: int) -> int | None:
        p = model.pools.get(int(pool))
        if p is None:
            return None
        if p.sqrt_price_x96:
            return (p.sqrt_price_x96 * p.sqrt_price_x96) >> 96
        if p.reserve0 and p.reserve1:
            return (p.reserve1 << 96) // p.reserve0
        return None

    return price


def in_quote(reg: Registry, amount: int, token: int, prices: PriceSource) -> str:
    """``"  (= 12.34 USD)"`` for an amount the registry can value in its quote currency now, else ``""``."""
    text = reg.in_quote(amount, token, prices) if reg.quote is not None else None
    return f"  (= {text})" if text else ""


def domain_name(code: int) -> str:
    return code_name(Domain, code).lower()


# ---------------------------------------------------------------------- panels


def market_rows(model: DashboardModel, limit: int = 50, reg: Registry = NO_REGISTRY) -> list[Row]:
    rows: list[Row] = []
    for p in model.recent_pools(limit):
        pid = PoolId(p.pool)
        kind = pid.kind
        if kind == VenueKind.UNISWAP_V3 or p.sqrt_price_x96 is not None:
            a, b = fmt_int(p.sqrt_price_x96), fmt_int(p.liquidity)
        else:
            a = money(reg, p.reserve0, int(pid.token0)) if p.reserve0 is not None else "-"
            b = money(reg, p.reserve1, int(pid.token1)) if p.reserve1 is not None else "-"
        label = reg.pool_label(pid) if reg.token(int(pid.token0)) else pool_label(p.pool, short=True)
        chain_bad = model.chain_invalid.get(pid.chain_id, "")
        state = p.stale or chain_bad
        rows.append((f"pool-{p.pool}", (
            label, fmt_price(p, reg), venue_name(pid.venue), fmt_int(p.block), a, b,
            "-" if p.tick is None else str(p.tick), fmt_int(p.updates),
            f"STALE {state}" if state else "ok",
        )))
    for q in list(reversed(model.quotes.values()))[: max(0, limit - len(rows))]:
        scale = 10 ** q.price_scale
        bid = f"{q.bid / scale:.8g}" if q.bid else "-"
        ask = f"{q.ask / scale:.8g}" if q.ask else "-"
        last = f"{q.last / scale:.8g}" if q.last is not None else "-"
        rows.append((f"book-{q.venue}-{q.symbol}", (
            q.symbol, last, venue_name(q.venue), "-", f"bid {bid}", f"ask {ask}", "-", fmt_int(q.updates),
            f"RESYNC {q.stale}" if q.stale else f"ok (resynced {q.invalidations - 1}x)" if q.invalidations > 1 else "ok",
        )))
    return rows


def chain_heads_text(model: DashboardModel) -> str:
    """One line for the Market panel's border: each chain's head block and gas price."""
    parts = []
    for chain, b in sorted(model.blocks.items()):
        bad = model.chain_invalid.get(chain)
        parts.append(f"chain {chain} block {b.number:,} base fee {fmt_gwei(b.base_fee)}"
                     + (f" STALE ({bad})" if bad else ""))
    for chain, bad in model.chain_invalid.items():
        if chain not in model.blocks:
            parts.append(f"chain {chain} STALE ({bad})")
    return " | ".join(parts)


def swap_rows(model: DashboardModel, limit: int = 20, reg: Registry = NO_REGISTRY) -> list[Row]:
    """Newest first; amounts signed from the pool's side, with symbols and decimals when the registry knows
    the tokens."""
    rows: list[Row] = []
    for i, s in enumerate(reversed(model.swaps)):
        if i >= limit:
            break
        a0, a1 = s.amounts
        pid = PoolId(s.swap.pool)
        known = reg.token(int(pid.token0)) is not None
        rows.append((f"swap-{s.seq}-{i}", (
            fmt_int(s.seq), fmt_int(s.swap.block_number),
            reg.pool_label(pid) if known else pool_label(s.swap.pool, short=True),
            money(reg, a0, int(pid.token0)), money(reg, a1, int(pid.token1)), short_hex(s.swap.tx_hash),
        )))
    return rows


def signal_rows(model: DashboardModel, limit: int = 100, reg: Registry = NO_REGISTRY) -> list[Row]:
    rows: list[Row] = []
    for r in model.recent_signals(limit):
        ident, eco, path = r.identity, r.economics, r.path
        tok = eco.profit_token if eco else 0
        rows.append((f"sig-{r.signal_id}", (
            r.status,
            money(reg, eco.net_profit, tok) if eco else "-",
            short_id(r.signal_id),
            code_name(SignalKind, ident.kind).lower() if ident else "?",
            fmt_int(ident.block_number) if ident else "-",
            str(len(path.hops)) if path else "-",
            money(reg, eco.gross_profit, tok) if eco else "-",
            money(reg, eco.gas_cost, tok) if eco else "-",
            (ident.strategy or str(ident.strategy_id)) if ident else "?",
        )))
    return rows


def execution_rows(model: DashboardModel, limit: int = 100, reg: Registry = NO_REGISTRY) -> list[Row]:
    rows: list[Row] = []
    for r in model.recent_signals(limit * 4):
        st, res = r.started, r.result
        if st is None and res is None:
            continue
        tok = res.profit_token if res else 0
        net = realized_net(r)
        gas_wei = res.gas_used * res.effective_gas_price if res else 0
        rows.append((f"exe-{r.signal_id}", (
            outcome_name(res.outcome) if res else r.status,
            money(reg, net, tok) if net is not None else "-",
            money(reg, res.realized_profit, tok) if res else "-",
            short_id(r.signal_id),
            res.reason if res else "",
            fmt_eth(gas_wei) if gas_wei else "-",
            fmt_int(res.gas_used) if res and res.gas_used else "-",
            short_hex(st.tx_hash) if st else (short_hex(res.tx_hash) if res and any(res.tx_hash) else "-"),
            code_name(SubmissionMode, st.mode).lower() if st else "-",
            fmt_int(st.nonce) if st else "-",
            fmt_gwei(st.max_fee_per_gas) if st else "-",
            fmt_gwei(st.max_priority_fee_per_gas) if st else "-",
            fmt_int(st.gas_limit) if st else "-",
        )))
        if len(rows) >= limit:
            break
    return rows


def health_rows(model: DashboardModel) -> list[Row]:
    rows: list[Row] = []
    for dom, h in model.health.items():
        rows.append((f"relay-{dom}", (
            domain_name(dom), health_state(h), fmt_int(h.head), fmt_int(h.last_seq),
            fmt_int(h.lag), f"{h.rate:,.0f}", "-" if h.relay_rate is None else f"{h.relay_rate:,.0f}",
            fmt_int(h.messages), fmt_int(h.gaps), fmt_int(h.resyncs), fmt_int(h.lost), fmt_int(h.reconnects),
            fmt_int(h.seq_jumps), fmt_int(h.dropped), fmt_int(h.consumers),
            f"{h.worst_consumer} lag {fmt_int(h.worst_lag)}" if h.worst_lag is not None else "-",
        )))
    return rows


def health_state(h: RelayHealth) -> str:
    if h.connected is None:
        return "connecting…"
    if not h.connected:
        return "relay down"
    return "up"


def data_state(model: DashboardModel) -> str | None:
    """Why the figures cannot be trusted right now, or None: relays not connected (yet), or down."""
    down = [domain_name(d) for d, h in model.health.items() if h.connected is False]
    if down:
        return "NO DATA: relay down: " + ", ".join(down)
    if not any(h.connected or h.messages for h in model.health.values()):
        return "NO DATA: connecting to the relays…"
    return None


SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: list[int], width: int = 40) -> str:
    """The last ``width`` values as block characters, lowest to highest."""
    vals = values[-width:]
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    if hi == lo:
        return SPARK[0] * len(vals)
    return "".join(SPARK[(v - lo) * (len(SPARK) - 1) // (hi - lo)] for v in vals)


def pnl_risk_text(model: DashboardModel, reg: Registry = NO_REGISTRY) -> str:
    lines = []
    nodata = data_state(model)
    if model.halted:
        lines.append(f"RISK: HALTED ({len(model.active_stops)} active stop(s))")
        for ev in model.active_stops.values():
            lines.append(f"  stop #{ev.stop_id} scope {ev.scope_text} by {ev.sender}: {ev.reason}")
    elif nodata:
        lines.append(f"RISK: unknown -- {nodata}")
    else:
        lines.append("RISK: trading (no active stop)")
    lines.append("")
    lines.append("P&L (EXECUTED; realized net = realized gross - gas, in the profit token):")
    prices = pool_prices(model)
    if not model.realized and not model.simulated:
        lines.append("  none yet" + (" -- no data" if nodata else ""))
    for tok, v in model.realized.items():
        exp = model.expected.get(tok, 0)
        net = model.realized_net.get(tok)
        lines.append(f"  realized net {money(reg, net, tok) if net is not None else '-'}"
                     f"{in_quote(reg, net, tok, prices) if net is not None else ''}")
        lines.append(f"    gross {money(reg, v, tok)}, expected {money(reg, exp, tok)}")
        points = list(model.pnl_points.get(tok, ()))
        if points:
            lines.append(f"  {sparkline(points)}  net over the last {min(len(points), 40)} results")
    for tok, v in model.simulated.items():
        lines.append(f"  {money(reg, v, tok)}  shadow (SIMULATED){in_quote(reg, v, tok, prices)}")
    gas = sum(model.gas_spent.values())
    gas_quote = [reg.to_quote(w, native_token(c), prices) for c, w in model.gas_spent.items()] if reg.quote else []
    gas_text = (f"  (= {reg.quote_text(sum(gas_quote), native_token(next(iter(model.gas_spent))))})"  # type: ignore[arg-type]
                if gas_quote and None not in gas_quote else "")
    lines.append(f"Gas spent: {fmt_eth(gas)} ({fmt_int(model.gas_used_total)} gas){gas_text}")
    if model.cex_moved:
        moved = ", ".join(f"{venue_name(v)} {asset} {_signed(reg, n, tok)}"
                          for (v, asset), (tok, n) in sorted(model.cex_moved.items()))
        lines.append(f"Exchange balances moved by our fills: {moved}")
    if model.outcomes:
        counts = ", ".join(f"{outcome_name(k)} {v}" for k, v in sorted(model.outcomes.items()) if v)
        lines.append(f"Outcomes: {counts}")
    lines.append(f"Signals: {fmt_int(model.signals_seen)} seen, {fmt_int(model.open_signals)} open")
    lines += cross_chain_lines(model, reg)
    if model.risk_events:
        lines.append("")
        lines.append("Risk events (newest first):")
        for ev in list(reversed(model.risk_events))[:5]:
            lines.append(f"  {fmt_time(ev.at_ns)} {ev.kind.upper()} #{ev.stop_id} {ev.scope_text} "
                         f"by {ev.sender}: {ev.reason}")
    if model.notices:
        lines.append("")
        for at, text in list(reversed(model.notices))[:3]:
            lines.append(f"{fmt_time(at)} {text}")
    return "\n".join(lines)


# ---------------------------------------------------------------------- cross-chain


def cross_chain_lines(model: DashboardModel, reg: Registry = NO_REGISTRY, transfers: int = 5,
                      legs: int = 3) -> list[str]:
    """Both chains and the bridge (nothing without cross-chain activity): per chain its head, what our legs,
    unwinds and bridge transfers moved of each token (symbol and decimals, the exact integer beside) and the
    gas they cost; the newest cross-chain results with their two legs; then the bridge transfers in flight and
    completed with their fees, the newest first."""
    if not (model.cross_chain_signals or model.chain_moved or model.transfers):
        return []
    lines = ["", f"Cross-chain: {fmt_int(model.cross_chain_signals)} signal(s)"]
    chains = sorted({c for c, _ in model.chain_moved} | set(model.chain_gas)
                    | {c for t in model.transfers.values() for c in (t.src_chain, t.dst_chain)})
    for chain in chains:
        head = model.blocks.get(chain)
        lines.append(f"  chain {chain}" + (f" (block {head.number:,})" if head else "") + ": gas "
                     + fmt_eth(model.chain_gas.get(chain, 0)))
        for (c, tok), amount in sorted(model.chain_moved.items()):
            if c == chain:
                lines.append(f"    moved {_signed(reg, amount, tok)} {reg.symbol(tok) if reg.token(tok) else fmt_token(tok)}"
                             f" ({amount})")
    legged = [r for r in model.recent_signals(50) if r.chain_legs][:legs]
    if legged:
        lines.append("  newest cross-chain results (each leg: chain, in -> out):")
        for r in legged:
            parts = [f"{t.chain_id} {money(reg, t.amount_in, t.token_in)} -> {money(reg, t.amount_out, t.token_out)}"
                     f"{'' if t.result == DexLegResult.EXECUTED else ' ' + code_name(DexLegResult, t.result).lower()}"
                     for _, t in sorted(r.chain_legs.items())]
            lines.append(f"    {short_id(r.signal_id)} {r.status}: " + " | ".join(parts))
    counts = model.transfer_counts
    if model.transfers:
        fees = ", ".join(exact(reg, v, tok) for tok, v in sorted(model.bridge_fees.items())) or "none"
        lines.append(f"  bridge transfers: {model.transfers_in_flight} in flight, "
                     f"{counts.get(BridgeTransferState.COMPLETED, 0)} completed, "
                     f"{counts.get(BridgeTransferState.REFUSED, 0) + counts.get(BridgeTransferState.FAILED, 0)} "
                     f"refused/failed; fees {fees}")
        for t in list(reversed(model.transfers.values()))[:transfers]:
            lines.append("    " + transfer_line(reg, t))
    return lines


def transfer_line(reg: Registry, t: BridgeTransfer) -> str:
    """One bridge transfer: chains, amount, state, fee and received once completed."""
    state = code_name(BridgeTransferState, t.state)
    text = f"#{t.transfer_id} {t.src_chain} -> {t.dst_chain}: {exact(reg, t.amount, t.src_token)} {state}"
    if t.state == BridgeTransferState.COMPLETED:
        took = (t.completed_time_ns - t.sent_time_ns) if t.sent_time_ns and t.completed_time_ns else 0
        text += (f", fee {exact(reg, t.fee, t.dst_token)}, received {exact(reg, t.received, t.dst_token)}"
                 + (f" after {took / 1e9:.0f} s" if took > 0 else ""))
    elif t.reason:
        text += f": {t.reason}"
    return text


def chain_leg_lines(r: SignalRecord, reg: Registry = NO_REGISTRY) -> list[str]:
    """A cross-chain signal's two legs as reported (``ChainLegReport``), with their unwinds."""
    lines = []
    for leg in sorted(r.chain_legs):
        t: ChainLegReport = r.chain_legs[leg]
        name = code_name(ChainLeg, leg).lower()
        lines.append(f"  {name} leg on chain {t.chain_id}: {code_name(DexLegResult, t.result).lower()}, "
                     f"{exact(reg, t.amount_in, t.token_in)} -> {exact(reg, t.amount_out, t.token_out)} "
                     f"(min {money(reg, t.min_out, t.token_out)})"
                     + (f", block {t.block_number:,}, gas {fmt_eth(t.gas_used * t.effective_gas_price)}"
                        if t.block_number else ""))
        if t.unwind_attempts:
            lines.append(f"      unwind {code_name(DexLegResult, t.unwind_result).lower()} after {t.unwind_attempts} "
                         f"attempt(s): {exact(reg, t.unwind_amount_in, t.token_out)} -> "
                         f"{exact(reg, t.unwind_amount_out, t.token_in)}, gas {fmt_eth(t.unwind_gas_cost)}")
        if t.left_open:
            lines.append(f"      LEFT OPEN {exact(reg, t.left_open, t.token_out)}")
        if t.reason:
            lines.append(f"      {t.reason}")
    return lines


# ---------------------------------------------------------------------- inspector and tracer


def _selected(model: DashboardModel, signal_id: int | None, prompt: str) -> SignalRecord | str:
    """The selected signal's record, or the text to show instead (``prompt`` when none is selected)."""
    if signal_id is None:
        return prompt
    r = model.signals.get(signal_id)
    return f"Signal {signal_id}: no longer retained." if r is None else r


def inspector_text(model: DashboardModel, signal_id: int | None, reg: Registry = NO_REGISTRY) -> str:
    r = _selected(model, signal_id, "Signal inspector: select a signal (arrows / enter in the Signals panel).")
    return r if isinstance(r, str) else _inspect(r, reg)


def net_stages(r: SignalRecord, reg: Registry = NO_REGISTRY, prices: PriceSource | None = None) -> list[str]:
    """The trade's net at each stage, labelled; the realized one is authoritative once there."""
    eco, res = r.economics, r.result
    tok = eco.profit_token if eco else (res.profit_token if res else 0)
    lines = ["  per stage (profit token):"]
    lines.append(f"    predicted at detection   net {money(reg, eco.net_profit, tok) if eco else '-'}")
    lines.append(f"    re-validated (executor)  gross {money(reg, res.expected_profit, tok) if res else '(not yet)'}")
    net = realized_net(r)
    if res is None:
        lines.append("    realized on chain        net (not yet)")
    elif net is None:
        lines.append(f"    realized on chain        gross {money(reg, res.realized_profit, tok)}, gas "
                     f"{fmt_eth(res.gas_used * res.effective_gas_price)} (no rate to net them)")
    else:
        where = "realized, both legs      " if r.legs is not None else "realized on chain        "
        worth = in_quote(reg, net, tok, prices) if prices is not None else ""
        lines.append(f"    {where}net {money(reg, net, tok)}{worth}   <- authoritative")
    return lines


def _signed(reg: Registry, amount: int, token: int) -> str:
    """An amount with its sign, in the token's decimals (its symbol dropped: the caller names the asset)."""
    info = reg.token(token) if token else None
    text = fmt_units(amount, info.decimals) if info else fmt_int(amount)
    return text if text.startswith("-") else "+" + text


def fill_line(reg: Registry, f: CexFill) -> str:
    """One exchange order as answered (a ``CexFill``)."""
    side = "BUY" if f.side == Side.BUY else "SELL"
    what = f"{code_name(CexOrderPurpose, f.purpose).lower()} {side} {f.symbol} on {venue_name(f.venue)}, order {f.order_id}"
    if not f.base_units:
        return f"{what}: nothing filled"
    return (f"{what}: {money(reg, f.base_units, f.base_token)} ({f.base_asset}) for "
            f"{money(reg, f.quote_units, f.quote_token)} ({f.quote_asset}), fee {money(reg, f.fee_units, f.quote_token)}")


def legs_lines(r: SignalRecord, reg: Registry = NO_REGISTRY) -> list[str]:
    """A CEX-DEX signal's legs: the exchange orders and what the LegReport says each leg did."""
    lines = [f"  CEX {fill_line(reg, f)}" for f in r.cex_fills] + chain_leg_lines(r, reg)
    t = r.legs
    if t is None:
        return lines
    side = "BUY" if t.cex_side == Side.BUY else "SELL"
    lines.append(f"  legs: CEX {side} {t.symbol} on {venue_name(t.cex_venue)}: filled {money(reg, t.cex_filled, t.base_token)}"
                 f" of {money(reg, t.cex_requested, t.base_token)} for {money(reg, t.cex_quote, t.quote_token)}")
    lines.append(f"        DEX {code_name(DexLegResult, t.dex_result).lower()}: {money(reg, t.dex_base, t.base_token)} / "
                 f"{money(reg, t.dex_quote, t.quote_token)}, gas {money(reg, t.gas_cost, t.quote_token)}")
    if t.unwound or t.left_open:
        lines.append(f"        unwound {money(reg, t.unwound, t.base_token)} for {money(reg, t.unwind_quote, t.quote_token)}"
                     + (f", LEFT OPEN {money(reg, t.left_open, t.base_token)}" if t.left_open else ""))
    lines.append(f"        realized net {money(reg, t.realized_profit, t.quote_token)} (taker fee and DEX gas paid)")
    return lines


def _inspect(r: SignalRecord, reg: Registry = NO_REGISTRY) -> str:
    lines = [f"Signal {r.signal_id}   status {r.status}", *net_stages(r, reg), ""]
    ident, eco, path = r.identity, r.economics, r.path
    if ident is not None:
        lines.append(f"  strategy {ident.strategy or ident.strategy_id} ({code_name(SignalKind, ident.kind).lower()}), chain "
                     f"{ident.chain_id}, block {fmt_int(ident.block_number)}, confidence "
                     f"{ident.confidence_bps / 100:.2f}%")
    else:
        lines.append("  (signal message not received; only execution reports)")
    if eco is not None:
        tok = eco.profit_token
        named = reg.token(tok) is not None if tok else False
        lines += [
            f"  profit token   {(reg.symbol(tok) + ' ') if named else ''}"
            f"{TokenId(tok).address if tok else '-'}",
            f"  gross profit   {money(reg, eco.gross_profit, tok):>30}",
            f"  - gas cost     {money(reg, eco.gas_cost, tok):>30}   ({fmt_int(eco.gas_units)} gas @ "
            f"{fmt_gwei(eco.gas_price_wei)})",
            f"  - flash fee    {money(reg, eco.flash_fee, tok):>30}",
            f"  - slippage     {money(reg, eco.slippage_allowance, tok):>30}",
            f"  = net profit   {money(reg, eco.net_profit, tok):>30}",
        ]
        check = eco.gross_profit - eco.gas_cost - eco.flash_fee - eco.slippage_allowance
        if check != eco.net_profit:
            lines.append(f"  ! net does not add up: gross - costs = {fmt_int(check)}")
    if r.cross_chain is not None:
        x = r.cross_chain
        lines.append(f"  cross-chain {x.source_chain} -> {x.dest_chain} bridge {x.bridge}, bridge cost "
                     f"{fmt_int(x.bridge_cost)}, timing risk {x.timing_risk_blocks} blocks")
    if path is not None:
        lines.append(f"  path: {len(path.hops)} hop(s)")
        for i, h in enumerate(path.hops, 1):
            pid = PoolId(h.pool)
            if pid.kind == VenueKind.CEX and not pid.chain_id:  # the CEX leg: an order on the venue's book
                lines.append(f"   {i}. CEX book {pool_label(h.pool)} (an order on {venue_name(pid.venue)})")
                lines.append(f"      {full_address(h.token_in)} -> {full_address(h.token_out)}")
                lines.append(f"      in {fmt_int(h.amount_in)}  out {fmt_int(h.amount_out)}")
                continue
            label = f" {reg.pool_label(pid)}" if reg.token(int(pid.token0)) else ""
            lines.append(f"   {i}. pool {pid.address} ({venue_name(pid.venue)}){label}")
            t_in, t_out = (int(TokenId.of(pid.chain_id, full_address(t))) for t in (h.token_in, h.token_out))

            def sym(t: int) -> str:
                return f"{reg.symbol(t)} " if reg.token(t) else ""

            lines.append(f"      {sym(t_in)}{full_address(h.token_in)} -> {sym(t_out)}{full_address(h.token_out)}")
            lines.append(f"      in {money(reg, h.amount_in, t_in)}  out {money(reg, h.amount_out, t_out)}")
    if r.result is not None:
        res = r.result
        tok = res.profit_token
        lines.append(f"  outcome {outcome_name(res.outcome)}: expected {money(reg, res.expected_profit, tok)}, "
                     f"realized {money(reg, res.realized_profit, tok)}" + (f" ({res.reason})" if res.reason else ""))
    lines += legs_lines(r, reg)
    return "\n".join(lines)


def tracer_text(model: DashboardModel, signal_id: int | None, reg: Registry = NO_REGISTRY) -> str:
    r = _selected(model, signal_id, "Execution tracer: select a signal to follow it to its outcome.")
    if isinstance(r, str):
        return r
    lines = [f"Trace of signal {r.signal_id}" + (f" (trace id {r.trace_context.trace_id:032x})"
                                                if r.trace_context else "")]
    steps = r.steps  # in time order (the model keeps them so, whichever relay was read first)
    t0 = steps[0].at_ns if steps else 0
    for s in steps:
        lines.append(f"  {s.step:<10} {fmt_time(s.at_ns)} {fmt_delta(max(0, s.at_ns - t0)):>10}  "
                     f"{domain_name(s.domain)}#{s.seq}  {s.detail}")
    st, res = r.started, r.result
    if r.step_at("detected") is None:
        lines.append(f"  {'detected':<10} (not seen)")
    if r.step_at("started") is None:
        lines.append(f"  {'started':<10} " + (f"not sent: {outcome_name(res.outcome)}" if res else "(waiting)"))
    if r.step_at("result") is None:
        lines.append(f"  {'result':<10} (waiting)")
    if st is not None:
        lines.append(f"  tx 0x{st.tx_hash.hex()} nonce {st.nonce}, max fee {fmt_gwei(st.max_fee_per_gas)}, "
                     f"priority {fmt_gwei(st.max_priority_fee_per_gas)}, gas limit {fmt_int(st.gas_limit)}")
    if res is not None:
        why = f" -- {res.reason}" if res.reason else ""
        if res.gas_used:
            lines.append(f"  result block {fmt_int(res.block_number)}, gas used {fmt_int(res.gas_used)} @ "
                         f"{fmt_gwei(res.effective_gas_price)} = {fmt_eth(res.gas_used * res.effective_gas_price)}: "
                         f"{outcome_name(res.outcome)}{why}")
        else:
            lines.append(f"  result {outcome_name(res.outcome)}{why} (no transaction mined, no gas paid)")
        lines += legs_lines(r, reg)
        lines += net_stages(r, reg, pool_prices(model))
    return "\n".join(lines)
