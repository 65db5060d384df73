"""Frames to bytes: checked against the catalog, written without copying payloads twice.

The carrier coalesces many small frames into one `send_all`, so the primary
call is `FrameEncoder.encode_into(out, frame)`, which appends header and
payload to a caller-owned bytearray. For a large payload, `header_for(frame)`
gives the 16 header bytes alone so the payload can be sent as it is.
`fragment` splits one message into frames that fit the peer's max frame size,
as zero-copy memoryview slices.
"""

from __future__ import annotations

import attrs

from .catalog import KindClass, check_header, spec_for
from .errors import ProtocolError, Reason
from .frames import (
    HEADER,
    HEADER_SIZE,
    MAX_STREAM_ID,
    Buffer,
    Flags,
    Frame,
    FrameKind,
    describe_frame,
)
from .ids import Side
from .settings import DEFAULT_MAX_FRAME_SIZE, check_max_frame_size


@attrs.define
class FrameEncoder:
    """Encodes frames that `side` sends; `max_frame_size` is the peer's announced limit.

    Every frame is checked with the same catalog rules the peer's decoder
    applies (kind, flags, stream id zero rule, direction, payload size), so a
    bug here fails loudly at the sender with a `ProtocolError`.
    """

    side: Side
    max_frame_size: int = attrs.field(
        default=DEFAULT_MAX_FRAME_SIZE, validator=lambda _s, _a, v: check_max_frame_size(v)
    )

    @property
    def max_payload_size(self) -> int:
        """The largest payload one frame may carry to this peer."""
        return self.max_frame_size - HEADER_SIZE

    def header_for(self, frame: Frame) -> bytes:
        """Check `frame` and return its 16 header bytes."""
        length = HEADER_SIZE + len(frame.payload)
        if not 0 <= frame.stream_id <= MAX_STREAM_ID:
            raise ProtocolError(
                "stream id does not fit in 64 bits: "
                + describe_frame(frame.kind, frame.flags, frame.stream_id),
                reason=Reason.STREAM_ID_MUST_BE_NONZERO,
                kind=frame.kind,
                flags=frame.flags,
                stream_id=frame.stream_id,
            )
        check_header(
            length,
            frame.kind,
            frame.flags,
            0,
            frame.stream_id,
            sender=self.side,
            max_frame_size=self.max_frame_size,
        )
        return HEADER.pack(length, frame.kind, frame.flags, 0, frame.stream_id)

    def encode_into(self, out: bytearray, frame: Frame) -> None:
        """Check `frame` and append its bytes to `out` (one copy of the payload, into `out`)."""
        out += self.header_for(frame)
        out += frame.payload

    def encode(self, frame: Frame) -> bytes:
        """Check `frame` and return its bytes."""
        return self.header_for(frame) + bytes(frame.payload)

    def fragment(
        self, kind: FrameKind, stream_id: int, message: Buffer, *, fin: bool = False
    ) -> list[Frame]:
        """Split one CHUNK or REPLY message into frames that fit this peer.

        All frames but the last carry MORE_FRAMES; FIN, if asked for, goes on the
        last only. An empty message is one empty frame. Payloads are memoryview
        slices of `message`: keep it unchanged until the frames are written.
        """
        if spec_for(kind).kind_class is not KindClass.STREAM_DATA:
            raise ValueError(f"only stream data kinds are fragmented, not {kind.name}")
        view = memoryview(message).cast("B")
        step = self.max_payload_size
        last_flags = Flags.FIN if fin else Flags.NONE
        if len(view) <= step:
            return [Frame(kind, last_flags, stream_id, message)]
        starts = range(0, len(view), step)
        last_start = starts[-1]
        return [
            Frame(
                kind,
                last_flags if start == last_start else Flags.MORE_FRAMES,
                stream_id,
                view[start : start + step],
            )
            for start in starts
        ]
