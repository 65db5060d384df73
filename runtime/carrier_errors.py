"""Why a connection ended badly: the exceptions a carrier's `run` and the endpoints raise.

Each is a `ConnectionError`, so a serve loop can log and swallow them per
connection. `code` is the status every stream still open on the connection
ended with; the message says what happened, for a log line.
"""

from __future__ import annotations

from streamlet.codec import StatusCode


class CarrierError(ConnectionError):
    """A connection ended abnormally; its open streams ended with `code`."""

    def __init__(self, message: str, *, code: StatusCode = StatusCode.UNAVAILABLE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return self.message


class HandshakeError(CarrierError):
    """HELLO / HELLO_ACK failed: wrong first frame, another protocol version, or a timeout."""


class PeerProtocolError(CarrierError):
    """The peer sent bytes that break the wire protocol; the connection was closed."""


class PeerUnresponsiveError(CarrierError):
    """The peer stopped answering PING within the keepalive timeout."""


class ConnectionLostError(CarrierError):
    """The byte stream ended or broke without a graceful BYE."""


class PeerClosedError(CarrierError):
    """The peer ended the connection with a BYE carrying an error code."""


def describe_transport_error(exc: BaseException) -> str:
    """A transport error for a log line, with its cause (trio wraps e.g. the `ssl` error)."""
    cause = exc.__cause__
    return f"{exc!r} caused by {cause!r}" if cause is not None else repr(exc)
