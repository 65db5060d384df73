"""The kinds catalog: per frame kind, its class, who may send it, its flags, id and payload rules.

Both the encoder and the decoder check every frame against this one registry
(`check_header`), so a misframed frame fails at the boundary, from its header
alone, before a body is buffered or dispatched. `specs/wire.md` holds the same
table; a test compares the two entry by entry.
"""

from __future__ import annotations

import enum
from types import MappingProxyType

import attrs

from .errors import ProtocolError, Reason
from .frames import HEADER_SIZE, UNKNOWN_FLAG_BITS, Flags, FrameKind, describe_frame
from .ids import Side, opener_of


class KindClass(enum.Enum):
    """What a kind is for."""

    STREAM_DATA = "stream data"  # carries an application message; may be fragmented
    LIFECYCLE = "lifecycle"  # opens or ends a stream
    CONTROL = "control"  # flow control and the connection itself


class Sender(enum.Enum):
    """Who may send a kind. Stream kinds name a role in the stream, connection kinds a side."""

    STREAM_OPENER = "stream opener"  # the client of the stream (the id's parity says which side)
    STREAM_ACCEPTOR = "stream acceptor"  # the server of the stream
    CONNECTOR = "connector"
    ACCEPTOR = "acceptor"
    EITHER = "either"


class StreamIdRule(enum.Enum):
    """Whether a kind is about the connection (id 0) or about one stream (id > 0)."""

    ZERO = "zero"
    NONZERO = "nonzero"


class PayloadRule(enum.Enum):
    """The shape of a kind's payload, as far as the frame layer checks it."""

    EMPTY = "empty"
    EXACT = "exact"  # exactly `payload_size` bytes
    CBOR_MAP = "cbor map"  # a nonempty CBOR map; its fields are checked by `payloads`
    OPAQUE = "opaque"  # any bytes; the stream's encoding gives them meaning


@attrs.frozen
class KindSpec:
    """One catalog entry."""

    kind: FrameKind
    kind_class: KindClass
    sender: Sender
    allowed_flags: Flags
    stream_id: StreamIdRule
    payload: PayloadRule
    payload_size: int | None = None  # for PayloadRule.EXACT

    def sender_may_send(self, sender: Side, stream_id: int) -> bool:
        """Whether `sender` may send this kind on `stream_id` (the direction matrix)."""
        rule = self.sender
        if rule is Sender.EITHER:
            return True
        if rule is Sender.CONNECTOR:
            return sender is Side.CONNECTOR
        if rule is Sender.ACCEPTOR:
            return sender is Side.ACCEPTOR
        is_opener = opener_of(stream_id) is sender
        return is_opener if rule is Sender.STREAM_OPENER else not is_opener


_S, _C = StreamIdRule.NONZERO, StreamIdRule.ZERO
_DATA, _LIFE, _CTRL = KindClass.STREAM_DATA, KindClass.LIFECYCLE, KindClass.CONTROL
_NONE, _MORE, _FIN = Flags.NONE, Flags.MORE_FRAMES, Flags.FIN
_K = FrameKind

CATALOG: MappingProxyType[FrameKind, KindSpec] = MappingProxyType(
    {
        spec.kind: spec
        for spec in (
            KindSpec(_K.STREAM_OPEN, _LIFE, Sender.STREAM_OPENER, _FIN, _S, PayloadRule.CBOR_MAP),
            KindSpec(_K.STREAM_CHUNK, _DATA, Sender.EITHER, _MORE | _FIN, _S, PayloadRule.OPAQUE),
            KindSpec(_K.STREAM_END, _LIFE, Sender.EITHER, _NONE, _S, PayloadRule.EMPTY),
            KindSpec(_K.STREAM_REPLY, _DATA, Sender.STREAM_ACCEPTOR, _MORE, _S, PayloadRule.OPAQUE),
            KindSpec(_K.STREAM_ERROR, _LIFE, Sender.EITHER, _NONE, _S, PayloadRule.CBOR_MAP),
            KindSpec(_K.STREAM_CREDIT, _CTRL, Sender.EITHER, _NONE, _S, PayloadRule.EXACT, 4),
            KindSpec(_K.HELLO, _CTRL, Sender.CONNECTOR, _NONE, _C, PayloadRule.CBOR_MAP),
            KindSpec(_K.HELLO_ACK, _CTRL, Sender.ACCEPTOR, _NONE, _C, PayloadRule.CBOR_MAP),
            KindSpec(_K.BYE, _CTRL, Sender.EITHER, _NONE, _C, PayloadRule.CBOR_MAP),
            KindSpec(_K.PING, _CTRL, Sender.EITHER, _NONE, _C, PayloadRule.EXACT, 8),
            KindSpec(_K.PONG, _CTRL, Sender.EITHER, _NONE, _C, PayloadRule.EXACT, 8),
        )
    }
)

# Indexed by kind byte for the decoder's hot path; None for bytes that are no kind.
_BY_BYTE: tuple[KindSpec | None, ...] = tuple(
    CATALOG.get(FrameKind(byte)) if byte in FrameKind._value2member_map_ else None
    for byte in range(256)
)
_FLAGS_BY_BYTE: tuple[Flags, ...] = tuple(Flags(bits) for bits in range(8))


def spec_for(kind: FrameKind) -> KindSpec:
    """The catalog entry of `kind`."""
    return CATALOG[kind]


def _error(message: str, reason: Reason, kind: int, flags: int, stream_id: int) -> ProtocolError:
    return ProtocolError(
        f"{message}: {describe_frame(kind, flags, stream_id)}",
        reason=reason,
        kind=kind,
        flags=flags,
        stream_id=stream_id,
    )


def check_header(
    length: int,
    kind: int,
    flags: int,
    reserved: int,
    stream_id: int,
    *,
    sender: Side,
    max_frame_size: int,
) -> tuple[KindSpec, Flags]:
    """Check one frame header against the catalog; return its spec and flags or raise.

    Every rule a frame can break is decidable from the header, so this runs
    before the body is buffered. The order of the checks is the order of the
    table in `specs/wire.md`, section "What a receiver refuses".
    """
    if length < HEADER_SIZE:
        raise _error(
            f"length {length} is below the header size {HEADER_SIZE}",
            Reason.LENGTH_BELOW_HEADER,
            kind,
            flags,
            stream_id,
        )
    if length > max_frame_size:
        raise _error(
            f"length {length} is over the max frame size {max_frame_size}",
            Reason.LENGTH_OVER_MAX,
            kind,
            flags,
            stream_id,
        )
    spec = _BY_BYTE[kind]
    if spec is None:
        raise _error("unknown frame kind", Reason.UNKNOWN_KIND, kind, flags, stream_id)
    if reserved != 0:
        raise _error(
            f"reserved field is 0x{reserved:04x}, not 0",
            Reason.RESERVED_NONZERO,
            kind,
            flags,
            stream_id,
        )
    if flags & UNKNOWN_FLAG_BITS:
        raise _error("unknown flag bits", Reason.UNKNOWN_FLAGS, kind, flags, stream_id)
    if flags & Flags.COMPRESSED:
        raise _error(
            "COMPRESSED is reserved and not implemented",
            Reason.COMPRESSED_UNSUPPORTED,
            kind,
            flags,
            stream_id,
        )
    if flags & ~int(spec.allowed_flags):
        raise _error(
            f"{spec.kind.name} may not carry these flags",
            Reason.FLAGS_NOT_ALLOWED,
            kind,
            flags,
            stream_id,
        )
    if flags & Flags.MORE_FRAMES and flags & Flags.FIN:
        raise _error(
            "FIN goes on the last fragment only, not with MORE_FRAMES",
            Reason.MORE_FRAMES_WITH_FIN,
            kind,
            flags,
            stream_id,
        )
    if spec.stream_id is StreamIdRule.ZERO:
        if stream_id != 0:
            raise _error(
                f"{spec.kind.name} is about the connection and needs stream id 0",
                Reason.STREAM_ID_MUST_BE_ZERO,
                kind,
                flags,
                stream_id,
            )
    elif stream_id == 0:
        raise _error(
            f"{spec.kind.name} needs a stream id, not 0",
            Reason.STREAM_ID_MUST_BE_NONZERO,
            kind,
            flags,
            stream_id,
        )
    if not spec.sender_may_send(sender, stream_id):
        raise _error(
            f"{spec.kind.name} may only be sent by the {spec.sender.value}, "
            f"not by the {sender.value}",
            Reason.WRONG_SENDER,
            kind,
            flags,
            stream_id,
        )
    size = length - HEADER_SIZE
    rule = spec.payload
    if (
        (rule is PayloadRule.EMPTY and size != 0)
        or (rule is PayloadRule.EXACT and size != spec.payload_size)
        or (rule is PayloadRule.CBOR_MAP and size == 0)
    ):
        expected = {
            PayloadRule.EMPTY: "empty",
            PayloadRule.EXACT: f"{spec.payload_size} bytes",
            PayloadRule.CBOR_MAP: "a CBOR map",
        }[rule]
        raise _error(
            f"{spec.kind.name} payload must be {expected}, got {size} bytes",
            Reason.PAYLOAD_SIZE,
            kind,
            flags,
            stream_id,
        )
    if flags & Flags.MORE_FRAMES and size == 0:
        raise _error(
            "a MORE_FRAMES fragment must carry at least one byte",
            Reason.EMPTY_FRAGMENT,
            kind,
            flags,
            stream_id,
        )
    return spec, _FLAGS_BY_BYTE[flags]
