"""Fused whole-message codecs for the hot path: one header + one fixed-size record.

Most bus traffic is a single fixed-size record per message (reserves, swaps,
heartbeats). For each such type we generate, once, an encoder and a decoder
that handle the header and the record with ONE precompiled ``struct.Struct``
and no intermediate calls: CPython's per-call overhead, not the byte work, is
what dominates a codec like this (measured with callgrind: ~14.5k instructions
per heartbeat decode through the layered path).

The fused functions are pure accelerators of the layered codec in
``message.py``/``tlv.py``: any frame they do not recognise exactly (another
length, the extended form, several records) returns ``None`` and goes through
the general path, and every encoding error is re-raised by the general path so
the message names the offending field. Tests check fused and general paths
produce identical bytes and values.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from . import header as H
from .fields import STR, Kind
from .tlv import TLV, _compile, _dict_assignments, _fixed_parts

# type code -> (decoder(buf, off) -> Message | None, total frame size)
FAST_DECODE: dict[int, tuple[Callable[[Any, int], Any], int, bool]] = {}
# TLV class -> encoder(message) -> bytes | None
FAST_ENCODE: dict[type, Callable[[Any], bytes | None]] = {}

# word0 (magic|version|reserved), checksum, domain_seq, domain, ...: the header as decoders read it
_HEADER_FMT = H.header_format(*H.WORD_FIELDS)
_COVERED_FMT = H.COVERED.format.lstrip("<")


def _namespace(cls: type[TLV], message_cls: type, extra_ns: dict[str, Any], body_fmt: str) -> dict[str, Any]:
    """What the generated functions see: header + type code + length + ``body_fmt`` in ONE struct."""
    ns = dict(extra_ns)
    ns.update(
        {
            "_C": struct.Struct("<" + _COVERED_FMT + "BB" + body_fmt).pack,
            "_M": struct.Struct("<" + _HEADER_FMT + "BB" + body_fmt).unpack_from,
            "_cls": cls,
            "_Message": message_cls,
            "_crc32": H._crc32,
            "_PFX": H.PREFIX.pack,
        }
    )
    return ns


def _encoder(ns: dict[str, Any], code: int, plen: str, body_len: str, args: list[str], checks: list[str],
             prologue: str = "", suffix: str = "") -> Callable[[Any], bytes | None]:
    check = f"        if {' or '.join(checks)}: return None\n" if checks else ""
    src = (
        "def _fenc(m):\n"
        "    domain, tlvs, sid, sseq, dseq, ev, rv, flags = m\n"
        "    t = tlvs[0]\n"
        "    try:\n" + prologue + check
        + f"        c = _C(domain, 0, flags, {plen}, sseq, ev, rv, sid, {code}, {body_len}, "
        + "".join(f"{a}, " for a in args)
        + f"){suffix}\n"
        f"        return _PFX({H.MAGIC}, {H.VERSION}, 0, _crc32(c), dseq) + c\n"
        "    except Exception:\n"
        "        return None\n"
    )
    return _compile(src, "_fenc", ns)


def _decoder(ns: dict[str, Any], target: str, accept: str, end: str, assigns: list[str], tail: str = "") -> Any:
    """``accept``: the condition on plen/ln (and the string length n) that makes the frame ours;
    ``end``: the frame end, checked against the buffer only for a variable-size frame (``tail``,
    which reads the string up to it); the caller checked that a fixed-size one is there."""
    src = (
        "def _fdec(buf, off):\n"
        f"    (w0, csum, dseq, domain, r2, flags, plen, sseq, ev, rv, sid, code, ln, {target}) = _M(buf, off)\n"
        f"    if w0 != {H.HEAD4} or r2 or not 0 < domain < 5 or not ({accept}): return None\n"
        f"    end = {end}\n"
        f"    if {'end > len(buf) or ' if tail else ''}_crc32(buf[off + {H.OFF_COVERED}:end]) != csum: return None\n"
        + tail
        + "    o = _new(_cls)\n"
        "    d = o.__dict__\n" + "\n".join(assigns) + "\n"
        + ("    d[_sname] = s\n" if tail else "")
        + "    return _tuple_new(_Message, (domain, (o,), sid, sseq, dseq, ev, rv, flags))\n"
    )
    return _compile(src, "_fdec", ns)


def build(cls: type[TLV], message_cls: type, extra_ns: dict[str, Any]) -> None:
    fields = cls.FIELDS
    if fields and all(isinstance(k, Kind) for _, k in fields[:-1]) and fields[-1][1] is STR:
        _build_string_tailed(cls, message_cls, extra_ns)
        return
    if not fields or any(not isinstance(k, Kind) for _, k in fields):
        return
    size = cls.FIXED_SIZE
    if size > 255:
        return
    fixed: list[tuple[str, Kind]] = fields  # type: ignore[assignment]
    fmt, args, checks = _fixed_parts(fixed, "t")
    plen = size + 2
    total = H.HEADER_SIZE + plen
    ns = _namespace(cls, message_cls, extra_ns, fmt)
    target, assigns = _dict_assignments(fixed, "    ")
    FAST_ENCODE[cls] = _encoder(ns, cls.TYPE, str(plen), str(size), args, checks)
    dec = _decoder(ns, target, f"plen == {plen} and ln == {size}", f"off + {total}", assigns)
    FAST_DECODE[cls.TYPE] = (dec, total, True)


def _build_string_tailed(cls: type[TLV], message_cls: type, extra_ns: dict[str, Any]) -> None:
    """Fixed fields then one UTF-8 string (trades, quotes, book levels), compact form only."""
    fixed: list[tuple[str, Kind]] = cls.FIELDS[:-1]  # type: ignore[assignment]
    size = cls.FIXED_SIZE  # fixed part; the body is size + 1 + len(string)
    if size + 1 > 255:
        return
    fmt, args, checks = _fixed_parts(fixed, "t")
    ns = _namespace(cls, message_cls, extra_ns, fmt + "B")
    ns["_sname"] = cls.FIELDS[-1][0]
    prologue = (
        f"        s = t.{cls.FIELDS[-1][0]}.encode('utf-8')\n"
        "        n = len(s)\n"
        f"        if n > {254 - size}: return None\n"
    )
    FAST_ENCODE[cls] = _encoder(ns, cls.TYPE, f"{size + 3} + n", f"{size + 1} + n", [*args, "n"], checks,
                                prologue, " + s")
    target, assigns = _dict_assignments(fixed, "    ")
    target = "".join(f"{t.strip()}, " for t in target.split(",") if t.strip()) + "n"
    start = H.HEADER_SIZE + 2 + size + 1
    tail = (
        "    try:\n"
        f"        s = bytes(buf[off + {start}:end]).decode('utf-8')\n"
        "    except UnicodeDecodeError:\n"
        "        return None\n"
    )
    dec = _decoder(ns, target, f"ln == {size + 1} + n and plen == ln + 2", f"off + {H.HEADER_SIZE} + plen",
                   assigns, tail)
    FAST_DECODE[cls.TYPE] = (dec, start, False)
