"""Joining fragments: one `Reassembler` per stream turns MORE_FRAMES runs back into messages.

The carrier feeds it every frame of its stream, in order; it hands back the
frame to dispatch, or None while a fragmented message is incomplete. The
fragments of one message are consecutive among that stream's frames; frames of
other streams may come between them (the carrier interleaves fairly), which is
why there is one reassembler per stream. While a message is incomplete only
more of it (same kind), STREAM_CREDIT (it is about the other direction) and
STREAM_ERROR (an abort, which discards the partial message) may arrive on the
stream; anything else is a `ProtocolError`. Every CHUNK or REPLY message,
fragmented or not, is bounded by `max_message_size` (this side's announced
max chunk size), checked before a fragment is kept.
"""

from __future__ import annotations

import attrs

from .errors import ProtocolError, Reason
from .frames import Flags, Frame, FrameKind, describe_frame

_MAY_INTERRUPT = frozenset({FrameKind.STREAM_CREDIT, FrameKind.STREAM_ERROR})
_DATA = frozenset({FrameKind.STREAM_CHUNK, FrameKind.STREAM_REPLY})


@attrs.define
class Reassembler:
    """The fragment state of one stream's incoming messages."""

    stream_id: int
    max_message_size: int
    _kind: FrameKind | None = None
    _parts: list[bytes | bytearray | memoryview] = attrs.field(factory=list)
    _size: int = 0

    @property
    def buffered_size(self) -> int:
        """Bytes of an incomplete message held here."""
        return self._size

    @property
    def in_message(self) -> bool:
        """Whether a fragmented message has started and not finished."""
        return self._kind is not None

    def feed(self, frame: Frame) -> Frame | None:
        """Take the stream's next frame; return what to dispatch, or None while a message is open.

        A complete message comes back as one frame of its kind, without
        MORE_FRAMES and with the last fragment's FIN; other frames come back as
        they are (a single-frame message is returned without a copy).
        """
        if frame.stream_id != self.stream_id:
            raise ValueError(f"frame for stream {frame.stream_id} fed to {self.stream_id}'s")
        kind = frame.kind
        if self._kind is not None and kind is not self._kind:
            if kind not in _MAY_INTERRUPT:
                raise self._error(
                    f"{kind.name} in the middle of a fragmented {self._kind.name}",
                    Reason.INTERLEAVED_FRAGMENT,
                    frame,
                )
            if kind is FrameKind.STREAM_ERROR:
                self._reset()
            return frame
        if kind not in _DATA:
            return frame
        size = self._size + len(frame.payload)
        if size > self.max_message_size:
            self._reset()
            raise self._error(
                f"message of at least {size} bytes is over the max of {self.max_message_size}",
                Reason.MESSAGE_TOO_LARGE,
                frame,
            )
        more = bool(frame.flags & Flags.MORE_FRAMES)
        if self._kind is None and not more:
            return frame
        self._kind = kind
        self._parts.append(frame.payload)
        self._size = size
        if more:
            return None
        message = b"".join(self._parts)
        flags = frame.flags & ~Flags.MORE_FRAMES
        self._reset()
        return Frame(kind, Flags(flags), self.stream_id, message)

    def _reset(self) -> None:
        self._kind = None
        self._parts = []
        self._size = 0

    def _error(self, message: str, reason: Reason, frame: Frame) -> ProtocolError:
        return ProtocolError(
            f"{message}: {describe_frame(frame.kind, frame.flags, frame.stream_id)}",
            reason=reason,
            kind=frame.kind,
            flags=frame.flags,
            stream_id=frame.stream_id,
        )
