"""Streaming decoder: bytes in any chunking -> whole messages.

Like h11's ``Connection``: feed ``receive_data(bytes)``, then call
``next_message()`` until it returns ``None`` (more bytes needed). It never
touches I/O. The buffer is bounded: a frame announces its size in its first
12 bytes, and a size over ``MAX_PAYLOAD`` is rejected before anything is
allocated for it, so a hostile peer cannot make it grow without bound.

After a ``ProtocolError`` the stream is unusable (we can no longer find frame
boundaries); the decoder stays in the error state and re-raises.

``next_frame()`` returns the raw bytes of the next whole, checksum-verified
frame without decoding its TLVs -- what a relay or a recorder needs.
"""

from __future__ import annotations

from .errors import ProtocolError
from .header import HEADER_SIZE, check_prefix, verify_frame
from .message import Message, decode_frame


class FrameDecoder:
    __slots__ = ("_buf", "_pos", "_error")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._error: ProtocolError | None = None

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        if self._error is not None:
            raise self._error
        if self._pos:
            # compact lazily: only when the consumed prefix dominates the buffer
            if self._pos > 65536 or self._pos * 2 > len(self._buf):
                del self._buf[: self._pos]
                self._pos = 0
        self._buf += data

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as messages."""
        return len(self._buf) - self._pos

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

    def __iter__(self):  # type: ignore[no-untyped-def]
        while (m := self.next_message()) is not None:
            yield m
