"""The peer link: what a stream's actor calls to deliver to its peer.

A local peer is another `Stream` (see `pair`); a remote carrier implements the
same five methods by encoding STREAM_CHUNK / END / ERROR / REPLY / CREDIT frames
tagged with the stream id, and feeds inbound frames to the stream's own
`deliver_*` and `grant_credit` methods. `Stream.link(peer, window=...,
max_chunk_size=...)` connects the two; nothing else in the stream changes.
"""

from __future__ import annotations

from typing import Protocol

from streamlet.codec.status import StreamError


class PeerLink(Protocol):
    """Deliveries to the peer. Every method is synchronous and must never block or raise.

    The actor calls them from its task, also while it is being cancelled. Room
    is guaranteed by credit: a chunk is only delivered within the credit the
    peer granted (each chunk costs `chunk_charge(len(payload))`), END, REPLY and
    ERROR are sent at most once each, and a carrier may coalesce credit grants.
    Payloads are the encoded bytes, immutable, so they can be queued as is.
    """

    def deliver_chunk(self, payload: bytes) -> None:
        """One chunk of the sender's stream, in order (STREAM_CHUNK)."""

    def deliver_end(self) -> None:
        """The sender half-closes: no chunk follows (STREAM_END)."""

    def deliver_error(self, error: StreamError) -> None:
        """The stream failed or was cancelled at the sender (STREAM_ERROR)."""

    def deliver_reply(self, payload: bytes) -> None:
        """The server's terminal reply (STREAM_REPLY)."""

    def grant_credit(self, increment: int) -> None:
        """The receiver took `increment` > 0 more bytes: the sender may send that much more."""


class NullLink:
    """The link of a stream not linked yet: deliveries (from close or abort) go nowhere."""

    def deliver_chunk(self, payload: bytes) -> None:
        """Drop it."""

    def deliver_end(self) -> None:
        """Drop it."""

    def deliver_error(self, error: StreamError) -> None:
        """Drop it."""

    def deliver_reply(self, payload: bytes) -> None:
        """Drop it."""

    def grant_credit(self, increment: int) -> None:
        """Drop it."""
