"""The codec's one error: a peer broke the wire protocol."""

from __future__ import annotations


class ProtocolError(Exception):
    """Bytes from the peer that do not form a legal frame or payload.

    The message names what was wrong and, where known, the kind, flags and
    stream id, so a log line is enough to find the misbehaving peer.
    """
