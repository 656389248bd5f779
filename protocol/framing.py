"""The one frame splitter: bytes in any chunking -> whole frames, as messages, bytes or views.

Like h11's ``Connection``: feed ``receive_data(bytes)``, then take what is complete. It
never touches I/O. The buffer is bounded: a frame announces its size in its first 24
bytes, and a size over ``MAX_PAYLOAD`` is rejected before anything is allocated for it,
so a hostile peer cannot make it grow without bound.

Three ways to take frames, from the most convenient to the cheapest:

* ``next_message()``: the next frame fully decoded (CRC, TLVs) into a ``Message``;
* ``next_frame()``: the next frame's bytes, CRC-verified, TLVs not walked (a copy);
* ``views()``: every complete frame buffered, as ``FrameViews`` -- the buffer and an offsets
  array (one entry per frame plus the end), no per-frame Python object; headers checked
  (magic, version, reserved bytes, domain, length), CRCs not (the caller decides).

And, for the scanners that walk frames *in place* because they also stamp, dedupe or
sequence them in the same pass (the relay's ingest, the consumer core): ``window()`` gives
``(buffer, pos, end)`` and ``consume(pos)`` says how far the scanner got.

``FrameDecoder(shared=True)`` is the zero-copy mode: frames handed out keep pointing into
the buffer, so the decoder never changes or reuses a buffer once it holds data: each
``receive_data`` starts a new one holding the unconsumed tail plus the new bytes (a
``bytes`` without any copy when nothing was left over, unless ``writable`` asks for a
``bytearray`` the relay can stamp in place). Without ``shared`` the buffer is one private
``bytearray`` compacted lazily.

``split_frames`` is the boundary walk itself: one header check per frame, except that a
run of equal-size frames is checked in one vectorised pass over its header columns
(``numpy``, the columns from ``protocol.header``) -- the shape of the relay's hot path.

After a ``ProtocolError`` the stream is unusable (frame boundaries are lost); the decoder
stays in the error state and re-raises.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from typing import Any

import numpy as np

from .errors import ProtocolError
from .header import HEAD4, HEADER_SIZE, check_prefix, header_columns, verify_frame
from .message import Message, decode_frame

Buffer = bytes | bytearray | memoryview

FAST_MIN = 32  # frames: below this a vectorised header check does not pay for its set-up
_DTYPES: dict[tuple[int, tuple[str, ...]], Any] = {}


def header_view(buf: Buffer, pos: int, size: int, count: int, names: tuple[str, ...]) -> Any:
    """The header columns ``names`` of ``count`` frames of ``size`` bytes at ``buf[pos:]``, as a
    numpy structured array viewing the buffer (no copy; writable when the buffer is)."""
    key = (size, names)
    dt = _DTYPES.get(key)
    if dt is None:
        if len(_DTYPES) >= 256:
            _DTYPES.clear()
        spec: Any = {**header_columns(*names), "itemsize": size}
        dt = _DTYPES[key] = np.dtype(spec)
    return np.frombuffer(buf, dtype=dt, count=count, offset=pos)


_RUN_COLUMNS = ("head4", "domain16", "payload_len")


def uniform_run(buf: Buffer, pos: int, size: int, count: int) -> int:
    """How many of the ``count`` frames at ``buf[pos:]``, assumed ``size`` bytes each, really
    are: a valid prefix (what ``check_prefix`` checks) and payload length ``size - 52``."""
    h = header_view(buf, pos, size, count, _RUN_COLUMNS)
    dom = h["domain16"]
    ok = h["head4"] == HEAD4
    ok &= h["payload_len"] == size - HEADER_SIZE
    ok &= dom >= 1
    ok &= dom <= 4  # the reserved byte 17 is the high byte: non-zero fails this
    del h, dom
    return count if ok.all() else int(ok.argmin())


def split_frames(buf: Buffer, pos: int = 0, end: int | None = None, *, strict: bool = True) -> tuple[array[int], int]:
    """Offsets of the whole frames in ``buf[pos:end]`` plus the offset just past the last one
    (``array('q')``: frame ``i`` is ``buf[offs[i]:offs[i + 1]]``), and that last offset.

    A bad header raises ``FrameError`` (``strict``) or ends the walk there (``strict=False``,
    for recovery scans that keep the valid prefix of a torn file). CRCs are not checked.
    """
    if end is None:
        end = len(buf)
    offs = array("q")
    append = offs.append
    prev = 0
    while end - pos >= HEADER_SIZE:
        try:
            size = check_prefix(buf, pos)
        except ProtocolError:
            if strict:
                raise
            break
        if pos + size > end:
            break
        append(pos)
        pos += size
        if size == prev and end - pos >= FAST_MIN * size:
            m = uniform_run(buf, pos, size, (end - pos) // size)
            if m:
                offs.frombytes(np.arange(pos, pos + m * size, size, dtype=np.int64).tobytes())
                pos += m * size
        prev = size
    append(pos)
    return offs, pos


class FrameViews:
    """Whole frames back to back in ``data``: frame ``i`` is ``data[offsets[i]:offsets[i + 1]]``."""

    __slots__ = ("data", "offsets")

    def __init__(self, data: Buffer, offsets: array[int]) -> None:
        self.data = data
        self.offsets = offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def start(self) -> int:
        return self.offsets[0]

    @property
    def stop(self) -> int:
        return self.offsets[-1]

    def view(self) -> memoryview:
        """All the frames as one zero-copy slice."""
        return memoryview(self.data)[self.offsets[0] : self.offsets[-1]]

    def __iter__(self) -> Iterator[memoryview]:
        """One zero-copy ``memoryview`` per frame (a Python object per frame: not for hot paths)."""
        mv = memoryview(self.data)
        offs = self.offsets
        for i in range(len(offs) - 1):
            yield mv[offs[i] : offs[i + 1]]

    def frames(self) -> list[bytes]:
        data = bytes(self.data) if not isinstance(self.data, bytes) else self.data
        offs = self.offsets.tolist()
        return [data[a:b] for a, b in zip(offs, offs[1:])]

    def messages(self) -> list[Message]:
        """Every frame fully decoded (CRC checked, TLVs parsed)."""
        data = self.data
        offs = self.offsets
        return [decode_frame(data, offs[i])[0] for i in range(len(offs) - 1)]


class FrameDecoder:
    __slots__ = ("_buf", "_pos", "_error", "_shared", "_writable")

    def __init__(self, *, shared: bool = False, writable: bool = False) -> None:
        self._buf: bytes | bytearray = bytearray() if writable or not shared else b""
        self._pos = 0
        self._error: ProtocolError | None = None
        self._shared = shared
        self._writable = writable

    def reset(self) -> None:
        """Forget everything buffered and any error (a new connection)."""
        self._buf = bytearray() if self._writable or not self._shared else b""
        self._pos = 0
        self._error = None

    def receive_data(self, data: Buffer) -> None:
        if self._error is not None:
            raise self._error
        if self._shared:
            pos = self._pos
            if pos < len(self._buf):
                rest = memoryview(self._buf)[pos:]
                self._buf = (bytearray(rest) if self._writable else bytes(rest)) + data
            elif self._writable:
                self._buf = bytearray(data)
            else:
                self._buf = data if type(data) is bytes else bytes(data)
            self._pos = 0
            return
        buf = self._buf
        assert isinstance(buf, bytearray)
        if self._pos:
            # compact lazily: only when the consumed prefix dominates the buffer
            if self._pos == len(buf):
                buf.clear()
                self._pos = 0
            elif self._pos > 65536 or self._pos * 2 > len(buf):
                del buf[: self._pos]
                self._pos = 0
        buf += data

    @property
    def buffered(self) -> int:
        """Bytes received but not yet taken."""
        return len(self._buf) - self._pos

    # ---- in-place scanners ----

    def window(self) -> tuple[bytes | bytearray, int, int]:
        """``(buffer, pos, end)``: the unconsumed bytes, for a scanner that walks them in place."""
        if self._error is not None:
            raise self._error
        return self._buf, self._pos, len(self._buf)

    def consume(self, pos: int) -> None:
        """The scanner took everything before ``pos`` (an offset into ``window()``'s buffer)."""
        if not self._pos <= pos <= len(self._buf):
            raise ValueError(f"consume({pos}) outside the window [{self._pos}, {len(self._buf)}]")
        self._pos = pos

    def fail(self, exc: ProtocolError) -> None:
        """The scanner found the stream malformed: stay in the error state."""
        self._error = exc

    # ---- taking frames ----

    def _frame_size(self) -> int:
        """Size of the next frame if it is complete, else 0."""
        if len(self._buf) - self._pos < HEADER_SIZE:
            return 0
        try:
            size = check_prefix(self._buf, self._pos)
        except ProtocolError as exc:
            self._error = exc
            raise
        return size if len(self._buf) - self._pos >= size else 0

    def next_message(self) -> Message | None:
        if self._error is not None:
            raise self._error
        if not self._frame_size():
            return None
        try:
            msg, end = decode_frame(self._buf, self._pos)
        except ProtocolError as exc:
            self._error = exc
            raise
        self._pos = end
        return msg

    def next_frame(self) -> bytes | None:
        if self._error is not None:
            raise self._error
        size = self._frame_size()
        if not size:
            return None
        try:
            verify_frame(self._buf, self._pos, size)
        except ProtocolError as exc:
            self._error = exc
            raise
        frame = bytes(self._buf[self._pos : self._pos + size])
        self._pos += size
        return frame

    def views(self) -> FrameViews | None:
        """Every complete frame buffered, zero-copy (``shared`` mode), headers checked; None if none."""
        if self._error is not None:
            raise self._error
        if not self._shared:
            raise ProtocolError("views() needs FrameDecoder(shared=True): the buffer is reused otherwise")
        try:
            offs, pos = split_frames(self._buf, self._pos)
        except ProtocolError as exc:
            self._error = exc
            raise
        if len(offs) == 1:
            return None
        self._pos = pos
        return FrameViews(self._buf, offs)

    def __iter__(self) -> Iterator[Message]:
        while (m := self.next_message()) is not None:
            yield m


__all__ = ["FAST_MIN", "FrameDecoder", "FrameViews", "header_view", "split_frames", "uniform_run"]
