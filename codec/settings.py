"""Connection settings: the protocol version, defaults and legal ranges, and HELLO / HELLO_ACK.

Each side announces, in its HELLO (connector) or HELLO_ACK (acceptor), what it
is willing to *receive*: the largest frame, the initial per-stream credit
window it grants, how many concurrent streams the peer may open, the largest
chunk or reply message, and the chunk encodings it understands. Each sender
obeys the peer's announcement (HTTP/2 SETTINGS style, one value per
direction); the two handshake frames themselves must fit `MIN_MAX_FRAME_SIZE`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs
import cbor2

from .chunks import Encoding
from .errors import ProtocolError, Reason
from .fields import bad_field, get_int, get_list, read_map
from .safecbor import Buffer

PROTOCOL_VERSION = 1

MIN_MAX_FRAME_SIZE = 16 * 1024  # HTTP/2's bounds for SETTINGS_MAX_FRAME_SIZE
MAX_MAX_FRAME_SIZE = 16 * 1024 * 1024
DEFAULT_MAX_FRAME_SIZE = 64 * 1024

MAX_WINDOW = 2**31 - 1  # windows and credit increments fit a signed 32-bit integer
# A chunk costs its payload size in credit, but never less than this: a flood of empty
# chunks stays bounded by the window too. A smaller window could never carry a chunk.
MIN_CHUNK_CHARGE = 16
MIN_WINDOW = MIN_CHUNK_CHARGE
DEFAULT_INITIAL_WINDOW = 1024 * 1024
# Half the window: a receiver need only return credit once half is consumed, as no chunk
# can find less than half free after that (see specs/stream.md, credit rules).
DEFAULT_MAX_CHUNK_SIZE = DEFAULT_INITIAL_WINDOW // 2
DEFAULT_MAX_STREAMS = 100
MAX_STREAMS = 2**31 - 1
MAX_ENCODINGS = 16  # entries in a HELLO's encodings list


def chunk_charge(size: int) -> int:
    """The credit one CHUNK or REPLY message of `size` payload bytes consumes."""
    return size if size > MIN_CHUNK_CHARGE else MIN_CHUNK_CHARGE


def check_max_frame_size(value: int) -> None:
    """Raise `ValueError` unless `value` is a legal max frame size (local configuration)."""
    if not MIN_MAX_FRAME_SIZE <= value <= MAX_MAX_FRAME_SIZE:
        raise ValueError(
            f"max frame size {value} is outside [{MIN_MAX_FRAME_SIZE}, {MAX_MAX_FRAME_SIZE}]"
        )


@attrs.frozen
class HelloPayload:
    """The connector's settings (HELLO); `HelloAckPayload` carries the acceptor's."""

    name: ClassVar[str] = "HELLO"

    version: int = PROTOCOL_VERSION
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    initial_window: int = DEFAULT_INITIAL_WINDOW
    max_streams: int = DEFAULT_MAX_STREAMS
    max_chunk_size: int = DEFAULT_MAX_CHUNK_SIZE
    encodings: tuple[Encoding, ...] = (Encoding.RAW, Encoding.CBOR)

    def __attrs_post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise `ProtocolError` if a value is outside its legal range."""
        fields = attrs.asdict(self, recurse=False)
        fields["encodings"] = [encoding.value for encoding in self.encodings]
        type(self)._check(fields)

    def encode(self) -> bytes:
        """The CBOR map for the wire."""
        return cbor2.dumps(
            {
                "version": self.version,
                "max_frame_size": self.max_frame_size,
                "initial_window": self.initial_window,
                "max_streams": self.max_streams,
                "max_chunk_size": self.max_chunk_size,
                "encodings": [encoding.value for encoding in self.encodings],
            }
        )

    @classmethod
    def decode(cls, data: Buffer) -> HelloPayload:
        """Parse and validate a payload from the peer; unknown encodings are dropped."""
        fields = read_map(data, cls.name)
        values = cls._check(fields)
        return cls(**values)

    @classmethod
    def _check(cls, fields: Mapping[Any, Any]) -> dict[str, Any]:
        name = cls.name
        version = get_int(fields, name, "version", low=1, high=2**32 - 1)
        max_frame_size = get_int(
            fields, name, "max_frame_size", low=MIN_MAX_FRAME_SIZE, high=MAX_MAX_FRAME_SIZE
        )
        initial_window = get_int(fields, name, "initial_window", low=MIN_WINDOW, high=MAX_WINDOW)
        max_streams = get_int(fields, name, "max_streams", low=0, high=MAX_STREAMS)
        max_chunk_size = get_int(fields, name, "max_chunk_size", low=1, high=MAX_WINDOW)
        if max_chunk_size > initial_window:
            raise bad_field(
                name, "max_chunk_size", f"{max_chunk_size} is above initial_window {initial_window}"
            )
        names = get_list(fields, name, "encodings")
        if len(names) > MAX_ENCODINGS:
            raise bad_field(name, "encodings", f"more than {MAX_ENCODINGS} entries")
        known = {encoding.value: encoding for encoding in Encoding}
        encodings: list[Encoding] = []
        for entry in names:
            if not isinstance(entry, str):
                raise bad_field(name, "encodings", f"entry {entry!r} is not a text string")
            if entry in known and known[entry] not in encodings:
                encodings.append(known[entry])
        return {
            "version": version,
            "max_frame_size": max_frame_size,
            "initial_window": initial_window,
            "max_streams": max_streams,
            "max_chunk_size": max_chunk_size,
            "encodings": tuple(encodings),
        }


@attrs.frozen
class HelloAckPayload(HelloPayload):
    """The acceptor's settings (HELLO_ACK): the same fields as HELLO."""

    name: ClassVar[str] = "HELLO_ACK"


def check_version(hello: HelloPayload) -> None:
    """Raise `ProtocolError` unless the peer speaks `PROTOCOL_VERSION`."""
    if hello.version != PROTOCOL_VERSION:
        raise ProtocolError(
            f"{hello.name}.version: peer speaks version {hello.version}, "
            f"this side speaks {PROTOCOL_VERSION}",
            reason=Reason.BAD_FIELD,
        )
