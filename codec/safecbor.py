"""Bounded CBOR decoding of untrusted bytes, on top of cbor2 (>= 6.1.1).

cbor2 decodes far more than streamlet needs, and some of it is hostile-friendly:
semantic tags build decimals with huge exponents (tags 4, 5), compile regular
expressions (35), parse MIME messages (36), build sets (258) and shared or
cyclic references (28, 29), string references (25, 256); maps with integer
keys can be built to collide in Python's hash table (quadratic time); `loads`
ignores trailing bytes. A `CborProfile` says what one use of CBOR accepts, and
`decode_cbor_bounded` enforces it: one value and nothing after it, definite
lengths only, no duplicate map keys, text or byte-string map keys only, a depth
bound, and an allow-list of tags (everything else refused, unknown tags too).
Declared lengths larger than the input fail as a truncation in cbor2 without a
large allocation, and the input itself is already bounded by the frame size.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from typing import Any

import attrs
import cbor2

from .errors import ProtocolError, Reason

Buffer = bytes | bytearray | memoryview


class _TagRefused(Exception):
    """Raised inside cbor2 by our tag guard; turned into a `ProtocolError` outside."""


def _refuse_tag(tag: int) -> Any:
    def refuse(value: Any, immutable: bool) -> Any:
        raise _TagRefused(f"CBOR tag {tag} is not allowed here")

    return refuse


class _TagGuard(Mapping[int, Any]):
    """A `semantic_decoders` mapping that refuses every tag not allowed.

    cbor2 looks a tag up here before using its built-in decoder, so a missing
    key (an allowed tag) falls back to the built-in one and a present key
    replaces it with a refusal.
    """

    def __init__(self, allowed: frozenset[int]) -> None:
        self._allowed = allowed

    def __getitem__(self, tag: int) -> Any:
        if tag in self._allowed:
            raise KeyError(tag)
        return _refuse_tag(tag)

    def __contains__(self, tag: object) -> bool:
        return tag not in self._allowed

    def __iter__(self) -> Iterator[int]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _refuse_unknown_tag(tag: cbor2.CBORTag, immutable: bool) -> Any:
    raise _TagRefused(f"CBOR tag {tag.tag} is not allowed here")


@attrs.frozen
class CborProfile:
    """What one use of CBOR accepts: nesting depth and the allowed semantic tags."""

    name: str
    max_depth: int
    allowed_tags: frozenset[int]


# Control payloads (OPEN, ERROR, HELLO, BYE): plain maps, no tags at all.
CONTROL_PROFILE = CborProfile(name="control payload", max_depth=16, allowed_tags=frozenset())
# Chunks and replies of `cbor` streams: the JSON-like model plus bytes, date/times
# (tags 0, 1) and bignums (tags 2, 3; cbor2 bounds them at 4300 decimal digits).
CHUNK_PROFILE = CborProfile(name="cbor chunk", max_depth=64, allowed_tags=frozenset({0, 1, 2, 3}))


def decode_cbor_bounded(payload: Buffer, profile: CborProfile) -> Any:
    """Decode exactly one CBOR value under `profile`; anything else raises `ProtocolError`."""
    data = payload if isinstance(payload, bytes) else bytes(payload)
    stream = io.BytesIO(data)
    decoder = cbor2.CBORDecoder(
        stream,
        tag_hook=_refuse_unknown_tag,
        semantic_decoders=_TagGuard(profile.allowed_tags),
        max_depth=profile.max_depth,
        allow_indefinite=False,
        allow_duplicate_keys=False,
        strict_hashable_types=True,
    )
    try:
        value = decoder.decode()
    except _TagRefused as exc:
        raise ProtocolError(f"{profile.name}: {exc}", reason=Reason.CBOR_TAG_REFUSED) from exc
    except Exception as exc:
        # cbor2 wraps most failures in CBORDecodeError, but some (bignum digit
        # limits) escape as ValueError; a refusal may also arrive chained.
        if isinstance(exc.__cause__, _TagRefused):
            raise ProtocolError(
                f"{profile.name}: {exc.__cause__}", reason=Reason.CBOR_TAG_REFUSED
            ) from exc
        raise ProtocolError(
            f"{profile.name}: malformed CBOR: {exc}", reason=Reason.MALFORMED_CBOR
        ) from exc
    end = stream.tell()
    if end != len(data):
        raise ProtocolError(
            f"{profile.name}: {len(data) - end} trailing bytes after the CBOR value",
            reason=Reason.MALFORMED_CBOR,
        )
    return value
