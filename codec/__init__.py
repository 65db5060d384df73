"""Sans-IO wire codec: frames to bytes and back, the kinds catalog, payloads. Never imports trio.

The wire format is specified in `specs/wire.md`; golden vectors are in
`specs/vectors/`. The carrier uses `FrameEncoder` / `FrameDecoder` per
connection, `StreamIds` for the connection's stream-id state, one
`Reassembler` per stream, and the payload classes for control frames.
"""

from .catalog import CATALOG, KindClass, KindSpec, PayloadRule, Sender, StreamIdRule, spec_for
from .chunks import Encoding, decode_cbor, decode_chunk, encode_chunk
from .decoder import FrameDecoder
from .encoder import FrameEncoder
from .errors import ProtocolError, Reason
from .frames import HEADER, HEADER_SIZE, MAX_STREAM_ID, Flags, Frame, FrameKind
from .ids import Side, StreamIds, opener_of
from .modes import Mode
from .payloads import (
    MAX_DEADLINE,
    MAX_DETAILS_BYTES,
    MAX_MESSAGE_BYTES,
    MAX_METADATA_BYTES,
    MAX_METHOD_BYTES,
    ByePayload,
    CreditPayload,
    ErrorPayload,
    OpenPayload,
    ping_payload,
)
from .reassembly import Reassembler
from .settings import (
    DEFAULT_INITIAL_WINDOW,
    DEFAULT_MAX_CHUNK_SIZE,
    DEFAULT_MAX_FRAME_SIZE,
    DEFAULT_MAX_STREAMS,
    MAX_MAX_FRAME_SIZE,
    MAX_WINDOW,
    MIN_CHUNK_CHARGE,
    MIN_MAX_FRAME_SIZE,
    MIN_WINDOW,
    PROTOCOL_VERSION,
    HelloAckPayload,
    HelloPayload,
    check_version,
    chunk_charge,
)
from .status import StatusCode, StreamError

__all__ = [
    "CATALOG",
    "DEFAULT_INITIAL_WINDOW",
    "DEFAULT_MAX_CHUNK_SIZE",
    "DEFAULT_MAX_FRAME_SIZE",
    "DEFAULT_MAX_STREAMS",
    "HEADER",
    "HEADER_SIZE",
    "MAX_DEADLINE",
    "MAX_DETAILS_BYTES",
    "MAX_MAX_FRAME_SIZE",
    "MAX_MESSAGE_BYTES",
    "MAX_METADATA_BYTES",
    "MAX_METHOD_BYTES",
    "MAX_STREAM_ID",
    "MAX_WINDOW",
    "MIN_CHUNK_CHARGE",
    "MIN_MAX_FRAME_SIZE",
    "MIN_WINDOW",
    "PROTOCOL_VERSION",
    "ByePayload",
    "CreditPayload",
    "Encoding",
    "ErrorPayload",
    "Flags",
    "Frame",
    "FrameDecoder",
    "FrameEncoder",
    "FrameKind",
    "HelloAckPayload",
    "HelloPayload",
    "KindClass",
    "KindSpec",
    "Mode",
    "OpenPayload",
    "PayloadRule",
    "ProtocolError",
    "Reason",
    "Reassembler",
    "Sender",
    "Side",
    "StatusCode",
    "StreamError",
    "StreamIdRule",
    "StreamIds",
    "check_version",
    "chunk_charge",
    "decode_cbor",
    "decode_chunk",
    "encode_chunk",
    "opener_of",
    "ping_payload",
    "spec_for",
]
