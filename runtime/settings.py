"""Connection settings: what this side announces in its HELLO / HELLO_ACK, and its timers.

The wire values (frame size, window, streams, chunk size) are what this side is
willing to *receive*; the peer announces its own, and each sender obeys the
other's. The timers are local policy and never go on the wire.
"""

from __future__ import annotations

from typing import TypeVar

import attrs
from streamlet.codec import (
    DEFAULT_INITIAL_WINDOW,
    DEFAULT_MAX_CHUNK_SIZE,
    DEFAULT_MAX_FRAME_SIZE,
    DEFAULT_MAX_STREAMS,
    MIN_WINDOW,
    Encoding,
    HelloAckPayload,
    HelloPayload,
    ProtocolError,
)

from .dispatch import DEFAULT_UNARY_DEADLINE

_Hello = TypeVar("_Hello", bound=HelloPayload)


def _positive(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0 seconds, got {value!r}")


def _positive_or_none(_instance: object, attribute: attrs.Attribute[float], value: object) -> None:
    if value is not None and not (isinstance(value, int | float) and value > 0):
        raise ValueError(f"{attribute.name} must be > 0 seconds or None, got {value!r}")


@attrs.frozen
class ConnectionSettings:
    """One side's settings for a connection; the defaults are the wire spec's.

    `ping_interval=None` turns keepalive off. `unary_deadline` is the deadline a
    unary call gets when the caller sets none; streams get none by default.
    """

    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    initial_window: int = DEFAULT_INITIAL_WINDOW
    max_streams: int = DEFAULT_MAX_STREAMS
    max_chunk_size: int = DEFAULT_MAX_CHUNK_SIZE
    handshake_timeout: float = attrs.field(default=10.0, validator=_positive)
    ping_interval: float | None = attrs.field(default=20.0, validator=_positive_or_none)
    ping_timeout: float = attrs.field(default=20.0, validator=_positive)
    close_timeout: float = attrs.field(default=5.0, validator=_positive)
    unary_deadline: float | None = attrs.field(
        default=DEFAULT_UNARY_DEADLINE, validator=_positive_or_none
    )

    def __attrs_post_init__(self) -> None:
        if self.initial_window < MIN_WINDOW:
            raise ValueError(
                f"initial_window must be at least {MIN_WINDOW} bytes (the least a chunk "
                f"costs), got {self.initial_window}"
            )
        try:
            self.hello()  # the same range checks the peer applies
        except ProtocolError as exc:
            raise ValueError(f"bad connection settings: {exc}") from None

    def hello(self) -> HelloPayload:
        """The HELLO a connector sends with these settings."""
        return self._announce(HelloPayload)

    def hello_ack(self) -> HelloAckPayload:
        """The HELLO_ACK an acceptor sends with these settings."""
        return self._announce(HelloAckPayload)

    def _announce(self, payload_type: type[_Hello]) -> _Hello:
        return payload_type(
            max_frame_size=self.max_frame_size,
            initial_window=self.initial_window,
            max_streams=self.max_streams,
            max_chunk_size=self.max_chunk_size,
            encodings=(Encoding.RAW, Encoding.CBOR),
        )


DEFAULT_SETTINGS = ConnectionSettings()
