"""The payloads of STREAM_OPEN, STREAM_ERROR, STREAM_CREDIT, BYE, PING and PONG.

Each is an attrs value with `encode()` (bytes for the wire) and
`decode(bytes)` (parse and validate a peer's payload; a `ProtocolError` names
the bad field). CBOR maps ignore unknown fields and treat null as absent.
HELLO and HELLO_ACK live in `settings`.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

import attrs
import cbor2

from .chunks import Encoding
from .errors import ProtocolError, Reason
from .fields import bad_field, get_float, get_int, get_optional_map, get_str, read_map
from .frames import MAX_STREAM_ID
from .modes import Mode
from .safecbor import Buffer
from .settings import MAX_WINDOW, MIN_WINDOW
from .status import StatusCode, StreamError

MAX_METHOD_BYTES = 1024
MAX_METADATA_BYTES = 8 * 1024  # sum of UTF-8 key and value lengths
MAX_MESSAGE_BYTES = 4 * 1024  # ERROR message, BYE reason
MAX_DETAILS_BYTES = 8 * 1024  # encoded ERROR details
MAX_DEADLINE = 315_360_000.0  # ten years, in seconds

_CREDIT = struct.Struct("<I")


def _enum_field(fields: Mapping[Any, Any], payload: str, field: str, enum_type: Any) -> Any:
    value = get_str(fields, payload, field, max_bytes=64)
    try:
        return enum_type(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum_type)
        raise bad_field(payload, field, f"{value!r} is not one of {allowed}") from None


def _metadata_size(metadata: Mapping[str, str]) -> int:
    return sum(len(key.encode()) + len(value.encode()) for key, value in metadata.items())


@attrs.frozen
class OpenPayload:
    """STREAM_OPEN: which method, in which mode and encoding, with how much credit to start.

    `deadline` is in seconds relative to receipt (clocks differ across hosts,
    as in gRPC's `grpc-timeout`). `metadata` is a small text-to-text map.
    """

    method: str
    mode: Mode
    encoding: Encoding
    initial_window: int
    deadline: float | None = None
    metadata: Mapping[str, str] = attrs.field(factory=dict)

    def encode(self) -> bytes:
        """The CBOR map for the wire (absent optionals are left out)."""
        fields: dict[str, Any] = {
            "method": self.method,
            "mode": self.mode.value,
            "encoding": self.encoding.value,
            "initial_window": self.initial_window,
        }
        if self.deadline is not None:
            fields["deadline"] = float(self.deadline)
        if self.metadata:
            fields["metadata"] = dict(self.metadata)
        data = cbor2.dumps(fields)
        OpenPayload.decode(data)  # the same rules the peer applies
        return data

    @classmethod
    def decode(cls, data: Buffer) -> OpenPayload:
        """Parse and validate a peer's STREAM_OPEN payload."""
        name = "STREAM_OPEN"
        fields = read_map(data, name)
        method = get_str(fields, name, "method", max_bytes=MAX_METHOD_BYTES, nonempty=True)
        mode = _enum_field(fields, name, "mode", Mode)
        encoding = _enum_field(fields, name, "encoding", Encoding)
        window = get_int(fields, name, "initial_window", low=MIN_WINDOW, high=MAX_WINDOW)
        deadline = get_float(fields, name, "deadline", low=0.0, high=MAX_DEADLINE)
        raw_metadata = get_optional_map(fields, name, "metadata")
        metadata: dict[str, str] = {}
        for key, value in raw_metadata.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise bad_field(name, "metadata", "keys and values must be text strings")
            metadata[key] = value
        if _metadata_size(metadata) > MAX_METADATA_BYTES:
            raise bad_field(name, "metadata", f"larger than {MAX_METADATA_BYTES} bytes")
        return cls(method, mode, encoding, window, deadline, metadata)


@attrs.frozen
class ErrorPayload:
    """STREAM_ERROR: a status code, a message and optional details; terminal for the stream.

    A numeric code this side does not know becomes UNKNOWN, as in gRPC.
    """

    code: StatusCode
    message: str = ""
    details: Mapping[str, Any] = attrs.field(factory=dict)

    @classmethod
    def from_stream_error(cls, error: StreamError) -> ErrorPayload:
        """The payload for `error`, always encodable: what does not fit is cut.

        The message is cut to `MAX_MESSAGE_BYTES` at a character edge; details
        that are not plain CBOR within `MAX_DETAILS_BYTES` are dropped (the code
        and message still reach the peer).
        """
        message = error.message.encode()[:MAX_MESSAGE_BYTES].decode(errors="ignore")
        payload = cls(error.code, message, dict(error.details))
        try:
            payload.encode()
        except (ProtocolError, TypeError, ValueError, cbor2.CBOREncodeError):
            payload = cls(error.code, message)
        return payload

    def to_stream_error(self) -> StreamError:
        """The error a waiter on the stream gets."""
        return StreamError(self.code, self.message, self.details)

    def encode(self) -> bytes:
        """The CBOR map for the wire; details must be plain CBOR within `MAX_DETAILS_BYTES`."""
        fields: dict[str, Any] = {"code": int(self.code), "message": self.message}
        if self.details:
            fields["details"] = dict(self.details)
        data = cbor2.dumps(fields)
        ErrorPayload.decode(data)
        return data

    @classmethod
    def decode(cls, data: Buffer) -> ErrorPayload:
        """Parse and validate a peer's STREAM_ERROR payload."""
        name = "STREAM_ERROR"
        fields = read_map(data, name)
        code = _status_code(fields, name)
        message = get_str(fields, name, "message", max_bytes=MAX_MESSAGE_BYTES, default="")
        details = get_optional_map(fields, name, "details")
        if not all(isinstance(key, str) for key in details):
            raise bad_field(name, "details", "keys must be text strings")
        if details and len(cbor2.dumps(dict(details))) > MAX_DETAILS_BYTES:
            raise bad_field(name, "details", f"larger than {MAX_DETAILS_BYTES} bytes")
        return cls(code, message, dict(details))


def _status_code(fields: Mapping[Any, Any], payload: str) -> StatusCode:
    number = get_int(fields, payload, "code", low=0, high=2**32 - 1)
    try:
        return StatusCode(number)
    except ValueError:
        return StatusCode.UNKNOWN


@attrs.frozen
class CreditPayload:
    """STREAM_CREDIT: grant the peer `increment` more bytes on this stream (u32 little-endian).

    A fixed 4-byte integer rather than CBOR: it is the most frequent control
    frame. Zero is illegal (HTTP/2, QUIC), and so is anything over 2**31 - 1.
    """

    increment: int

    def encode(self) -> bytes:
        """The 4 payload bytes."""
        if not 1 <= self.increment <= MAX_WINDOW:
            raise ValueError(f"credit increment {self.increment} is outside [1, {MAX_WINDOW}]")
        return _CREDIT.pack(self.increment)

    @classmethod
    def decode(cls, data: Buffer) -> CreditPayload:
        """Parse a peer's STREAM_CREDIT payload."""
        if len(data) != _CREDIT.size:
            raise ProtocolError(
                f"STREAM_CREDIT payload must be 4 bytes, got {len(data)}",
                reason=Reason.PAYLOAD_SIZE,
            )
        (increment,) = _CREDIT.unpack(data)
        if not 1 <= increment <= MAX_WINDOW:
            raise bad_field(
                "STREAM_CREDIT", "increment", f"{increment} is outside [1, {MAX_WINDOW}]"
            )
        return cls(increment)


@attrs.frozen
class ByePayload:
    """BYE: no new streams; the sender finishes the streams it has seen and then closes.

    `last_stream_id` is the highest stream id opened by the *receiver* of the
    BYE that the sender has seen and will process (0: none), as in HTTP/2
    GOAWAY: the receiver's streams above it were never seen and may be retried.
    """

    code: StatusCode = StatusCode.OK
    reason: str = ""
    last_stream_id: int = 0

    def encode(self) -> bytes:
        """The CBOR map for the wire."""
        data = cbor2.dumps(
            {"code": int(self.code), "reason": self.reason, "last_stream_id": self.last_stream_id}
        )
        ByePayload.decode(data)
        return data

    @classmethod
    def decode(cls, data: Buffer) -> ByePayload:
        """Parse and validate a peer's BYE payload."""
        name = "BYE"
        fields = read_map(data, name)
        code = _status_code(fields, name)
        reason = get_str(fields, name, "reason", max_bytes=MAX_MESSAGE_BYTES, default="")
        last = get_int(fields, name, "last_stream_id", low=0, high=MAX_STREAM_ID)
        return cls(code, reason, last)


PING_SIZE = 8


def ping_payload(opaque: Buffer) -> bytes:
    """Check a PING / PONG payload (exactly 8 opaque bytes); a PONG echoes its PING's."""
    if len(opaque) != PING_SIZE:
        raise ValueError(f"PING and PONG carry exactly {PING_SIZE} bytes, got {len(opaque)}")
    return bytes(opaque)
