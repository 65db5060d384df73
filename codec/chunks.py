"""Chunk encodings: how a stream's chunks and replies become payload bytes.

`raw` chunks are bytes-like and pass through without a copy where Python
allows; `cbor` chunks are any CBOR value. Credit is counted in these encoded
bytes, so a local pair and a wire connection account identically.
"""

from __future__ import annotations

import enum
from typing import Any

import cbor2

from .safecbor import CHUNK_PROFILE, decode_cbor_bounded

# Deep nesting is the cheap attack on a recursive decoder; real payloads are shallow.
MAX_CBOR_DEPTH = CHUNK_PROFILE.max_depth


class Encoding(enum.Enum):
    """How a stream's chunks are encoded on the wire."""

    RAW = "raw"
    CBOR = "cbor"


def encode_chunk(encoding: Encoding, value: Any) -> bytes | bytearray | memoryview:
    """Encode one chunk for `encoding`; raise `TypeError` when the value does not fit it."""
    if encoding is Encoding.RAW:
        if isinstance(value, bytes | bytearray | memoryview):
            return value
        raise TypeError(
            f"a raw stream carries bytes-like chunks, got {type(value).__name__}; "
            "open the stream with encoding='cbor' to send other values"
        )
    try:
        return cbor2.dumps(value)
    except (cbor2.CBOREncodeError, TypeError, ValueError) as exc:
        raise TypeError(f"cannot encode {type(value).__name__} as CBOR: {exc}") from exc


def decode_chunk(encoding: Encoding, payload: bytes | bytearray | memoryview) -> Any:
    """Decode one chunk's payload; a malformed CBOR payload raises `ProtocolError`."""
    if encoding is Encoding.RAW:
        return bytes(payload)
    return decode_cbor(payload)


def decode_cbor(payload: bytes | bytearray | memoryview) -> Any:
    """Decode one CBOR chunk value from untrusted bytes; see `safecbor` for what is refused.

    Exactly one value and no trailing bytes, depth-bounded, definite lengths,
    no duplicate keys, text or byte-string map keys, tags 0-3 only. The input
    is already bounded by the stream's max chunk size.
    """
    return decode_cbor_bounded(payload, CHUNK_PROFILE)
