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

_HEADER_FMT = "IIQBBHIQQQI"  # word0 (magic|version|reserved), checksum, domain_seq, domain, ...
_COVERED_FMT = "BBHIQQQI"


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
    code = cls.TYPE
    plen = size + 2
    total = H.HEADER_SIZE + plen
    ns = dict(extra_ns)
    ns.update(
        {
            "_C": struct.Struct("<" + _COVERED_FMT + "BB" + fmt).pack,
            "_M": struct.Struct("<" + _HEADER_FMT + "BB" + fmt).unpack_from,
            "_cls": cls,
            "_Message": message_cls,
            "_crc32": H._crc32,
            "_PFX": H.PREFIX.pack,
        }
    )
    check = f"        if {' or '.join(checks)}: return None\n" if checks else ""
    enc_src = (
        "def _fenc(m):\n"
        "    domain, tlvs, sid, sseq, dseq, ev, rv, flags = m\n"
        "    t = tlvs[0]\n"
        "    try:\n" + check + f"        c = _C(domain, 0, flags, {plen}, sseq, ev, rv, sid, {code}, {size}, "
        + ", ".join(args)
        + ")\n"
        f"        return _PFX({H.MAGIC}, {H.VERSION}, 0, _crc32(c), dseq) + c\n"
        "    except Exception:\n"
        "        return None\n"
    )
    target, assigns = _dict_assignments(fixed, "    ")
    w0 = H.MAGIC | (H.VERSION << 16)
    dec_src = (
        "def _fdec(buf, off):\n"
        f"    (w0, csum, dseq, domain, r2, flags, plen, sseq, ev, rv, sid, code, ln, {target}) = _M(buf, off)\n"
        f"    if w0 != {w0} or r2 or not 0 < domain < 5 or plen != {plen} or ln != {size}: return None\n"
        f"    if _crc32(buf[off + 16:off + {total}]) != csum: return None\n"
        "    o = _new(_cls)\n"
        "    d = o.__dict__\n" + "\n".join(assigns) + "\n"
        "    return _tuple_new(_Message, (domain, (o,), sid, sseq, dseq, ev, rv, flags))\n"
    )
    FAST_ENCODE[cls] = _compile(enc_src, "_fenc", ns)
    FAST_DECODE[code] = (_compile(dec_src, "_fdec", ns), total, True)


def _build_string_tailed(cls: type[TLV], message_cls: type, extra_ns: dict[str, Any]) -> None:
    """Fixed fields then one UTF-8 string (trades, quotes, book levels), compact form only."""
    fixed: list[tuple[str, Kind]] = cls.FIELDS[:-1]  # type: ignore[assignment]
    sname = cls.FIELDS[-1][0]
    size = cls.FIXED_SIZE  # fixed part; the body is size + 1 + len(string)
    if size + 1 > 255:
        return
    fmt, args, checks = _fixed_parts(fixed, "t")
    code = cls.TYPE
    ns = dict(extra_ns)
    ns.update(
        {
            "_C": struct.Struct("<" + _COVERED_FMT + "BB" + fmt + "B").pack,
            "_M": struct.Struct("<" + _HEADER_FMT + "BB" + fmt + "B").unpack_from,
            "_cls": cls,
            "_Message": message_cls,
            "_crc32": H._crc32,
            "_PFX": H.PREFIX.pack,
        }
    )
    check = f"        if {' or '.join(checks)}: return None\n" if checks else ""
    enc_src = (
        "def _fenc(m):\n"
        "    domain, tlvs, sid, sseq, dseq, ev, rv, flags = m\n"
        "    t = tlvs[0]\n"
        "    try:\n"
        f"        s = t.{sname}.encode('utf-8')\n"
        "        n = len(s)\n"
        f"        if n > {254 - size}: return None\n" + check
        + f"        c = _C(domain, 0, flags, {size + 3} + n, sseq, ev, rv, sid, {code}, {size + 1} + n, "
        + "".join(f"{a}, " for a in args)
        + "n) + s\n"
        f"        return _PFX({H.MAGIC}, {H.VERSION}, 0, _crc32(c), dseq) + c\n"
        "    except Exception:\n"
        "        return None\n"
    )
    target, assigns = _dict_assignments(fixed, "    ")
    target = "".join(f"{t.strip()}, " for t in target.split(",") if t.strip())
    w0 = H.MAGIC | (H.VERSION << 16)
    start = H.HEADER_SIZE + 2 + size + 1
    dec_src = (
        "def _fdec(buf, off):\n"
        f"    (w0, csum, dseq, domain, r2, flags, plen, sseq, ev, rv, sid, code, ln, {target}n) = _M(buf, off)\n"
        f"    if w0 != {w0} or r2 or not 0 < domain < 5 or ln != {size + 1} + n or plen != ln + 2: return None\n"
        f"    end = off + {H.HEADER_SIZE} + plen\n"
        "    if end > len(buf) or _crc32(buf[off + 16:end]) != csum: return None\n"
        "    try:\n"
        f"        s = bytes(buf[off + {start}:end]).decode('utf-8')\n"
        "    except UnicodeDecodeError:\n"
        "        return None\n"
        "    o = _new(_cls)\n"
        "    d = o.__dict__\n" + "\n".join(assigns) + "\n"
        f"    d[{sname!r}] = s\n"
        "    return _tuple_new(_Message, (domain, (o,), sid, sseq, dseq, ev, rv, flags))\n"
    )
    FAST_ENCODE[cls] = _compile(enc_src, "_fenc", ns)
    FAST_DECODE[code] = (_compile(dec_src, "_fdec", ns), H.HEADER_SIZE + 2 + size + 1, False)
