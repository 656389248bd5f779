"""Amounts, prices and pools for people to read: symbols, decimals applied, prices as quote per base.

The one place that turns exact integers into text for a human (the dashboard, the demo's summary,
``alphapulse report``, ``relay-cli tail``). Sans-IO: a :class:`Registry` is plain data built elsewhere
(``tools.registry`` loads it from deployment files, chain configs and the chain's own
``symbol()``/``decimals()``); this module only formats. Every figure is derived with integer
arithmetic, and no machine decision ever reads one of these strings back.

* amounts: ``fmt_units(1_500_000, 6)`` -> ``"1.500000"``; ``registry.amount(x, token)`` ->
  ``"1.500000 USDC"`` (a token the registry does not know: its base units and short address);
* prices: quote per base, the quote being the side people price in (a stablecoin, then WETH):
  ``"2,004.00 USDC per WETH"`` whichever way the pool sorts its tokens;
* pools: ``"WETH/USDC 0.05% V3 (uniswap_v3)"``;
* a quote currency (:class:`QuoteCurrency`, default USD via each chain's USDC): ``registry.to_quote(x,
  token, price_q96)`` values an amount through the pools the registry chose for that token, at the pool
  prices the caller reads from its own source (the dashboard's latest pool states, the books' prices
  table, the chain), with :func:`market.prices.convert_q96` -- integers all the way, rounded toward zero.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from market.prices import convert_q96
from protocol.ids import PoolId, TokenId, VenueKind, code_name

Q96 = 1 << 96

_KIND_SHORT = {VenueKind.UNISWAP_V2: "V2", VenueKind.UNISWAP_V3: "V3", VenueKind.UNISWAP_V4: "V4"}

# The side a price is quoted in, best first: a pool of two of these quotes in the earlier one.
QUOTE_PREFERENCE = ("USD", "USDC", "USDT", "DAI", "WETH", "ETH", "WBTC")


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenInfo:
    symbol: str
    decimals: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolInfo:
    venue: str  # the deployment's venue name, e.g. "uniswap_v3"
    fee_pips: int  # 1e-6: 500 = 0.05 %


# stablecoins that stand for the US dollar: a quote currency through one of them is named "USD"
USD_STABLES = ("USDC", "USDT", "DAI")

PriceSource = Callable[[int], "int | None"]  # pool id -> its token1-per-token0 price as Q64.96, None unknown


@dataclass(frozen=True, slots=True, kw_only=True)
class QuoteCurrency:
    """The currency amounts are also shown in: on each chain the token that stands for it (``tokens``:
    chain id -> token id, e.g. USDC for USD), and for every other token the pools that price it there
    (``paths``: token id -> pool ids, each pool trading the previous hop's other token, the last one ending in
    the quote token). ``native``: chain id -> the wrapped native token, which prices the gas coin."""

    name: str  # "USD"
    tokens: Mapping[int, int] = field(default_factory=dict)
    paths: Mapping[int, tuple[int, ...]] = field(default_factory=dict)
    native: Mapping[int, int] = field(default_factory=dict)


def _group(n: int) -> str:
    return f"{n:,}"


def fmt_units(amount: int, decimals: int, places: int | None = None) -> str:
    """Integer base units as a decimal with ``places`` digits (default ``min(decimals, 6)``), truncated
    toward zero, thousands separated: ``fmt_units(-1234567891, 6, 2)`` -> ``"-1,234.56"``."""
    places = min(decimals, 6) if places is None else places
    sign, a = ("-", -amount) if amount < 0 else ("", amount)
    whole, frac = divmod(a, 10**decimals)
    digits = (frac * 10**places) // 10**decimals
    tail = f".{digits:0{places}d}" if places else ""
    return f"{sign}{_group(whole)}{tail}"


def fmt_ratio(num: int, den: int, places: int | None = None) -> str:
    """``num / den`` (den > 0) rounded half up: 2 places from 1 up, else 4 significant digits."""
    if den <= 0:
        raise ValueError("den must be positive")
    sign, num = ("-", -num) if num < 0 else ("", num)
    if places is None:
        places = 2
        if 0 < num < den:  # below one: four significant digits
            k = 1
            while num * 10**k < den:
                k += 1
            places = k + 3
    q = (num * 10**places * 2 + den) // (2 * den)
    whole, frac = divmod(q, 10**places)
    return f"{sign}{_group(whole)}" + (f".{frac:0{places}d}" if places else "")


def short_address(address: str) -> str:
    return f"{address[:6]}…{address[-4:]}"


@dataclass(frozen=True, slots=True)
class Registry:
    """What a reader needs to name tokens and pools: token symbol and decimals by ``TokenId`` (int),
    venue name and fee by ``(chain_id, lower-case pool address)``."""

    tokens: Mapping[int, TokenInfo] = field(default_factory=dict)
    pools: Mapping[tuple[int, str], PoolInfo] = field(default_factory=dict)
    quote: QuoteCurrency | None = None

    def token(self, token: int) -> TokenInfo | None:
        return self.tokens.get(int(token))

    def symbol(self, token: int) -> str:
        info = self.token(token)
        return info.symbol if info else short_address(TokenId(int(token)).address)

    def amount(self, amount: int, token: int, places: int | None = None) -> str:
        """``"1.500000 USDC"``; a token without decimals on record: ``"1500000 base units of 0x1234…abcd"``."""
        info = self.token(token)
        if info is None:
            return f"{amount} base units of {short_address(TokenId(int(token)).address)}"
        return f"{fmt_units(amount, info.decimals, places)} {info.symbol}"

    def quote_side(self, token0: int, token1: int) -> bool:
        """True when token0 is the quote (prices read "token0 per token1"), by ``QUOTE_PREFERENCE``;
        with neither (or both equal) in it, token1 is the quote, as the pool itself prices."""
        def rank(t: int) -> int:
            s = self.symbol(t).upper()
            return QUOTE_PREFERENCE.index(s) if s in QUOTE_PREFERENCE else len(QUOTE_PREFERENCE)

        return rank(token0) < rank(token1)

    def price(self, pool: PoolId, num: int, den: int) -> str:
        """A raw price ``num/den`` of token1 base units per token0 base unit as ``"2,004.00 USDC per WETH"``."""
        p = PoolId(int(pool))
        t0, t1 = int(p.token0), int(p.token1)
        i0, i1 = self.token(t0), self.token(t1)
        d0, d1 = (i0.decimals if i0 else 0), (i1.decimals if i1 else 0)
        # human token1 per token0 = num/den * 10**(d0 - d1)
        hn, hd = num * 10**max(d0 - d1, 0), den * 10**max(d1 - d0, 0)
        if self.quote_side(t0, t1):  # quote in token0: invert
            if hn == 0:
                return f"- {self.symbol(t0)} per {self.symbol(t1)}"
            return f"{fmt_ratio(hd, hn)} {self.symbol(t0)} per {self.symbol(t1)}"
        return f"{fmt_ratio(hn, hd)} {self.symbol(t1)} per {self.symbol(t0)}"

    def price_sqrt_x96(self, pool: PoolId, sqrt_price_x96: int) -> str:
        return self.price(pool, sqrt_price_x96 * sqrt_price_x96, Q96 * Q96)

    def value_in_quote(self, amount: int, token: int, pool: PoolId, sqrt_price_x96: int) -> tuple[int, int] | None:
        """``amount`` of ``token`` (one of ``pool``'s two) in the pool's other token at its price, rounded
        toward zero: ``(amount, other token)``; None when ``token`` is not in the pool."""
        p = PoolId(int(pool))
        if int(token) not in (int(p.token0), int(p.token1)):
            return None
        src_is_token0 = int(token) == int(p.token0)
        value = convert_q96(amount, sqrt_price_x96 * sqrt_price_x96 >> 96, src_is_token0)
        return value, int(p.token1 if src_is_token0 else p.token0)

    def quote_token(self, token: int) -> int | None:
        """The quote currency's token on ``token``'s chain (None without a quote currency there)."""
        if self.quote is None:
            return None
        return self.quote.tokens.get(TokenId(int(token)).chain_id) or None

    def quote_pools(self, token: int) -> tuple[int, ...] | None:
        """The pools that value ``token`` in the quote currency (``()`` for the quote token itself, the
        wrapped native coin's for the gas coin); None when there is no such path."""
        q = self.quote
        target = self.quote_token(token)
        if q is None or target is None:
            return None
        tok = TokenId(int(token))
        t = int(tok) if tok.address_int else q.native.get(tok.chain_id, 0)
        if not t:
            return None
        return () if t == target else q.paths.get(t)

    def to_quote(self, amount: int, token: int, price_q96: PriceSource) -> int | None:
        """``amount`` of ``token`` (the chain's native coin too) in the quote token's base units, hop by hop
        through :meth:`quote_pools` at the prices ``price_q96`` gives, each hop rounded toward zero; None
        without a path or with a pool whose price is unknown."""
        pools = self.quote_pools(token)
        if pools is None:
            return None
        tok = TokenId(int(token))
        cur = int(tok) if tok.address_int else self.quote.native[tok.chain_id]  # type: ignore[union-attr]
        value = amount
        for pool in pools:
            price = price_q96(pool)
            if not price:
                return None
            p = PoolId(int(pool))
            value = convert_q96(value, price, cur == int(p.token0))
            cur = int(p.other_token(cur))
        return value

    def quote_text(self, value: int, token: int) -> str:
        """A value in the quote token's base units (:meth:`to_quote`) as ``"2,004.12 USD"``."""
        target = self.quote_token(token)
        info = self.token(target) if target else None
        assert self.quote is not None and target is not None
        if info is None:
            return f"{value} base units of {short_address(TokenId(target).address)}"
        return f"{fmt_units(value, info.decimals, 2)} {self.quote.name}"

    def in_quote(self, amount: int, token: int, price_q96: PriceSource) -> str | None:
        """``amount`` of ``token`` as quote-currency text (``"2,004.12 USD"``), None when it has no value."""
        value = self.to_quote(amount, token, price_q96)
        return None if value is None else self.quote_text(value, token)

    def pool_label(self, pool: PoolId) -> str:
        """``"WETH/USDC 0.05% V3 (uniswap_v3)"``: base/quote, fee, kind and the deployment's venue name;
        a pool the registry does not know: its kind, tokens and short address."""
        p = PoolId(int(pool))
        t0, t1 = int(p.token0), int(p.token1)
        base, quote = (t1, t0) if self.quote_side(t0, t1) else (t0, t1)
        kind = _KIND_SHORT.get(p.kind) or code_name(VenueKind, p.kind)
        info = self.pools.get((p.chain_id, p.address.lower()))
        pair = f"{self.symbol(base)}/{self.symbol(quote)}"
        if info is None:
            return f"{pair} {kind} ({short_address(p.address)})"
        return f"{pair} {info.fee_pips / 10_000:g}% {kind} ({info.venue})"


def describe(record: object, registry: Registry) -> str:
    """A protocol record's money in words, for a line that already shows its exact fields: the pool by
    name, V2 reserves and a V3 price as quote per base, a signal's economics and a result's profit in
    the profit token, gas in ETH. Empty when the registry names none of the record's tokens."""
    from protocol.execution import ExecutionResult
    from protocol.market import V2Reserves
    from protocol.signals import Economics

    parts: list[str] = []
    pool = getattr(record, "pool", None)
    if isinstance(pool, PoolId) and (registry.token(int(pool.token0)) or registry.token(int(pool.token1))):
        parts.append(registry.pool_label(pool))
        sqrt = getattr(record, "sqrt_price_x96", None)
        if isinstance(record, V2Reserves):
            parts.append(f"{registry.amount(record.reserve0, int(pool.token0))} + "
                         f"{registry.amount(record.reserve1, int(pool.token1))}")
            if record.reserve0:
                parts.append(registry.price(pool, record.reserve1, record.reserve0))
        elif isinstance(sqrt, int) and sqrt:
            parts.append(registry.price_sqrt_x96(pool, sqrt))
    elif isinstance(record, Economics) and registry.token(int(record.profit_token)):
        tok = int(record.profit_token)
        parts.append(f"net {registry.amount(record.net_profit, tok)} = gross {registry.amount(record.gross_profit, tok)}"
                     f" - gas {registry.amount(record.gas_cost, tok)}")
    elif isinstance(record, ExecutionResult) and registry.token(int(record.profit_token)):
        tok = int(record.profit_token)
        parts.append(f"expected {registry.amount(record.expected_profit, tok)}, "
                     f"realized {registry.amount(record.realized_profit, tok)}, "
                     f"gas {fmt_units(record.gas_used * record.effective_gas_price, 18)} ETH")
    return "; ".join(parts)
