"""The codec's one error: a peer broke the wire protocol.

Every `ProtocolError` carries a `Reason` (a stable keyword, also used by the
golden vectors in `specs/vectors/`) and, where known, the frame's kind, flags
and stream id, so a log line is enough to find the misbehaving peer.
"""

from __future__ import annotations

import enum


class Reason(enum.Enum):
    """Why bytes were refused; the values are the keywords `specs/wire.md` and the vectors use."""

    UNSPECIFIED = "unspecified"
    # Frame header and catalog (connection errors: the byte stream cannot be trusted).
    LENGTH_BELOW_HEADER = "length_below_header"
    LENGTH_OVER_MAX = "length_over_max"
    UNKNOWN_KIND = "unknown_kind"
    RESERVED_NONZERO = "reserved_nonzero"
    UNKNOWN_FLAGS = "unknown_flags"
    COMPRESSED_UNSUPPORTED = "compressed_unsupported"
    FLAGS_NOT_ALLOWED = "flags_not_allowed"
    MORE_FRAMES_WITH_FIN = "more_frames_with_fin"
    STREAM_ID_MUST_BE_ZERO = "stream_id_must_be_zero"
    STREAM_ID_MUST_BE_NONZERO = "stream_id_must_be_nonzero"
    WRONG_SENDER = "wrong_sender"
    PAYLOAD_SIZE = "payload_size"
    EMPTY_FRAGMENT = "empty_fragment"
    TRUNCATED = "truncated"
    # Connection state: stream ids.
    STREAM_ID_REUSED = "stream_id_reused"
    STREAM_NOT_OPENED = "stream_not_opened"
    STREAM_IDS_EXHAUSTED = "stream_ids_exhausted"
    # Fragmentation.
    MESSAGE_TOO_LARGE = "message_too_large"
    INTERLEAVED_FRAGMENT = "interleaved_fragment"
    # Payloads.
    MALFORMED_CBOR = "malformed_cbor"
    CBOR_TAG_REFUSED = "cbor_tag_refused"
    BAD_FIELD = "bad_field"


class ProtocolError(Exception):
    """Bytes from the peer that do not form a legal frame or payload.

    The message names what was wrong and, where known, the kind, flags and
    stream id. `reason` is the machine-readable keyword.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: Reason = Reason.UNSPECIFIED,
        kind: int | None = None,
        flags: int | None = None,
        stream_id: int | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.kind = kind
        self.flags = flags
        self.stream_id = stream_id
