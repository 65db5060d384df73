"""Bytes to frames, incrementally: the receiving half of the codec, h11-style.

Feed it whatever the socket gave (`receive_data`), then take frames out
(`next_frame()` or iterate) until it has none; any slicing of the same byte
stream gives the same frames. Each header is checked against the catalog as
soon as its 16 bytes are in, so a frame that declares a length over
`max_frame_size` is refused before a single body byte is buffered.

After a `ProtocolError` the decoder is dead: the connection cannot be trusted
(where the next frame starts is unknown), and every later call raises the same
error again. The carrier's answer is a BYE and closing the connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NoReturn

from .catalog import check_header
from .errors import ProtocolError, Reason
from .frames import HEADER, HEADER_SIZE, Buffer, Frame
from .ids import Side
from .settings import DEFAULT_MAX_FRAME_SIZE, check_max_frame_size

# Consumed bytes are dropped from the front of the buffer once they are this many
# and at least half of it, so many small frames in one read cost linear time.
_COMPACT_AT = 64 * 1024


class FrameDecoder:
    """Decodes the frames the peer of `side` sends; refuses frames over `max_frame_size`.

    `max_frame_size` is the limit this side announced in its HELLO / HELLO_ACK;
    it may be changed at any time (the next header is checked against the new
    value). The decoder holds at most the data it was given and not yet
    returned as frames: after draining, less than one frame (`buffered_size`).
    """

    __slots__ = ("_buffer", "_error", "_max_frame_size", "_offset", "_sender", "side")

    def __init__(self, side: Side, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        check_max_frame_size(max_frame_size)
        self.side = side
        self._sender = side.peer
        self._max_frame_size = max_frame_size
        self._buffer = bytearray()
        self._offset = 0
        self._error: ProtocolError | None = None

    @property
    def max_frame_size(self) -> int:
        """The largest frame (header included) this decoder accepts."""
        return self._max_frame_size

    @max_frame_size.setter
    def max_frame_size(self, value: int) -> None:
        check_max_frame_size(value)
        self._max_frame_size = value

    @property
    def buffered_size(self) -> int:
        """Bytes received and not yet returned as frames."""
        return len(self._buffer) - self._offset

    @property
    def error(self) -> ProtocolError | None:
        """The error that killed this decoder, if any."""
        return self._error

    def receive_data(self, data: Buffer) -> None:
        """Add bytes from the peer."""
        if self._error is not None:
            raise self._error
        self._buffer += data

    def receive_eof(self) -> None:
        """The peer closed its side: raise if that cut a frame in half."""
        if self._error is not None:
            raise self._error
        if self.buffered_size:
            self._fail(
                ProtocolError(
                    f"connection closed in the middle of a frame ({self.buffered_size} bytes "
                    "of it received)",
                    reason=Reason.TRUNCATED,
                )
            )

    def next_frame(self) -> Frame | None:
        """The next complete frame, or None until more data arrives."""
        if self._error is not None:
            raise self._error
        buffer = self._buffer
        offset = self._offset
        available = len(buffer) - offset
        if available < HEADER_SIZE:
            self._compact()
            return None
        length, kind, flags, reserved, stream_id = HEADER.unpack_from(buffer, offset)
        try:
            spec, flag_set = check_header(
                length,
                kind,
                flags,
                reserved,
                stream_id,
                sender=self._sender,
                max_frame_size=self._max_frame_size,
            )
        except ProtocolError as exc:
            self._fail(exc)
        if available < length:
            self._compact()
            return None
        end = offset + length
        if length == HEADER_SIZE:
            payload = b""
        else:
            with memoryview(buffer) as view, view[offset + HEADER_SIZE : end] as body:
                payload = bytes(body)
        self._offset = end
        return Frame(spec.kind, flag_set, stream_id, payload)

    def __iter__(self) -> Iterator[Frame]:
        """Every complete frame buffered now."""
        while (frame := self.next_frame()) is not None:
            yield frame

    def _compact(self) -> None:
        offset = self._offset
        if offset and (offset >= _COMPACT_AT or offset * 2 >= len(self._buffer)):
            del self._buffer[:offset]
            self._offset = 0

    def _fail(self, error: ProtocolError) -> NoReturn:
        self._error = error
        self._buffer = bytearray()
        self._offset = 0
        raise error
