"""Exact scaled decimals: venue decimal strings <-> integers with an explicit scale (never floats).

``parse_scaled("2064.73000000", 2) == 206473``; ``format_scaled(206473, 2) == "2064.73"``. Used by the CEX
collectors (prices and sizes off the wire) and the CEX order gateway (order quantities and fills). A string
with more significant decimals than the scale is refused (:class:`PrecisionError`), never rounded;
zero in any spelling ("0", "0.0", "0.00000000") is 0.
"""

from __future__ import annotations


class DecimalError(ValueError):
    """Not a non-negative decimal number."""


class PrecisionError(DecimalError):
    """More significant decimals than the scale allows."""


def parse_scaled(text: str, scale: int) -> int:
    """``"2064.73000000"``, scale 2 -> ``206473``. Exact: no float, no rounding.

    Accepts what venues send: digits with an optional fraction (trailing zeros beyond the scale
    are fine, "0.00000000" is 0) and, defensively, an exponent form ("1e-8"). Negative numbers
    are refused (prices and sizes on a book never are).
    """
    s = text.strip() if isinstance(text, str) else str(text)
    whole, dot, frac = s.partition(".")
    if "e" in s or "E" in s:
        return _parse_exponent(s, scale)
    if not whole.isdigit() if whole else not (dot and frac):
        raise DecimalError(f"not a decimal number: {text!r}")
    if frac and not frac.isdigit():
        raise DecimalError(f"not a decimal number: {text!r}")
    if len(frac) > scale:
        extra = frac[scale:]
        if extra.strip("0"):
            raise PrecisionError(f"{text!r} has more than {scale} decimals")
        frac = frac[:scale]
    return int((whole or "0") + frac.ljust(scale, "0"))


def _parse_exponent(s: str, scale: int) -> int:
    mant, _, exp_s = s.lower().partition("e")
    try:
        exp = int(exp_s)
    except ValueError:
        raise DecimalError(f"not a decimal number: {s!r}") from None
    whole, _, frac = mant.partition(".")
    digits = (whole or "0") + frac
    if not digits.isdigit():
        raise DecimalError(f"not a decimal number: {s!r}")
    shift = scale + exp - len(frac)  # value = int(digits) * 10**(exp - len(frac))
    if shift >= 0:
        return int(digits) * 10**shift
    q, r = divmod(int(digits), 10**-shift)
    if r:
        raise PrecisionError(f"{s!r} has more than {scale} decimals")
    return q


def decimals_of(text: str) -> int:
    """Significant decimals of a decimal string (``"0.01000"`` -> 2): the scale an increment implies."""
    _, _, frac = text.strip().partition(".")
    return len(frac.rstrip("0"))


def format_scaled(value: int, scale: int) -> str:
    """The inverse of ``parse_scaled`` (``206473``, 2 -> ``"2064.73"``), for stand-ins and logs."""
    if scale == 0:
        return str(value)
    whole, frac = divmod(value, 10**scale)
    return f"{whole}.{frac:0{scale}d}"
