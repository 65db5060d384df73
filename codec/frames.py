"""The frame: a 16-byte little-endian header and a payload, and the numbers on the wire.

Header layout (`<IBBHQ`): u32 length of the whole frame (header included), u8
kind, u8 flags, u16 reserved (must be 0), u64 stream id (0: the connection).
Kind and flag numbers are the wire spec: never reuse one.
"""

from __future__ import annotations

import enum
import struct

import attrs

Buffer = bytes | bytearray | memoryview

HEADER = struct.Struct("<IBBHQ")
HEADER_SIZE = HEADER.size  # 16
MAX_FRAME_LENGTH = 2**32 - 1  # what the u32 length field can say
MAX_STREAM_ID = 2**64 - 1


class FrameKind(enum.IntEnum):
    """The kind byte of a frame."""

    STREAM_OPEN = 0x01
    STREAM_CHUNK = 0x02
    STREAM_END = 0x03
    STREAM_REPLY = 0x04
    STREAM_ERROR = 0x05
    STREAM_CREDIT = 0x06
    HELLO = 0x10
    HELLO_ACK = 0x11
    BYE = 0x16
    PING = 0x17
    PONG = 0x18


class Flags(enum.IntFlag):
    """The flags byte of a frame; bits not named here are refused."""

    NONE = 0
    COMPRESSED = 0x01  # reserved: refused until compression is specified
    MORE_FRAMES = 0x02  # a fragment: the message continues in a later frame of this stream
    FIN = 0x04  # the sender's last message on this stream (saves an END frame)


KNOWN_FLAGS = Flags.COMPRESSED | Flags.MORE_FRAMES | Flags.FIN
# A plain int: `~` on an IntFlag complements within the known bits only.
UNKNOWN_FLAG_BITS = 0xFF & ~int(KNOWN_FLAGS)


@attrs.frozen
class Frame:
    """One frame as the codec sees it; the payload is kept as given (no copy)."""

    kind: FrameKind
    flags: Flags
    stream_id: int
    payload: Buffer = b""

    @property
    def length(self) -> int:
        """The frame's length field: header plus payload."""
        return HEADER_SIZE + len(self.payload)

    def __repr__(self) -> str:
        return (
            f"Frame({self.kind.name}, {describe_flags(self.flags)}, "
            f"stream_id={self.stream_id}, payload={len(self.payload)} bytes)"
        )


def describe_flags(flags: int) -> str:
    """Flags as `0x06(MORE_FRAMES|FIN)`: the hex byte and the names of the bits we know."""
    names = [flag.name for flag in (Flags.COMPRESSED, Flags.MORE_FRAMES, Flags.FIN) if flags & flag]
    unknown = flags & UNKNOWN_FLAG_BITS
    if unknown:
        names.append(f"0x{unknown:02x}")
    return f"0x{flags:02x}({'|'.join(str(name) for name in names) or 'none'})"


def describe_kind(kind: int) -> str:
    """A kind byte as its name, or as hex when it is not a known kind."""
    try:
        return FrameKind(kind).name
    except ValueError:
        return f"0x{kind:02x}"


def describe_frame(kind: int, flags: int, stream_id: int) -> str:
    """The `kind=... flags=... stream_id=...` suffix every `ProtocolError` message carries."""
    return f"kind={describe_kind(kind)} flags={describe_flags(flags)} stream_id={stream_id}"
