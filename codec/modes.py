"""The four call shapes of a stream, as gRPC has them; the names are the wire values."""

from __future__ import annotations

import enum


class Mode(enum.Enum):
    """How many messages each side of a call may send."""

    UNARY = "unary"  # one request chunk in, one reply out
    SERVER_STREAM = "server_stream"  # one request chunk in, many chunks out, then END
    CLIENT_STREAM = "client_stream"  # many chunks in, one reply out
    BIDI = "bidi"  # many each way; the server ends with END or a reply
