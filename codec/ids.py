"""Stream ids: which side opened a stream, and the connection state that keeps ids unique.

The connecting side opens odd ids, the accepting side even ids; 0 is the
connection itself. Ids are never reused on a connection: each side opens its
streams in strictly increasing order, so "greater than the last one" is the
whole reuse check. `StreamIds` is that state, for the carrier to own (the
`FrameDecoder` is per-frame and stateless about streams).
"""

from __future__ import annotations

import enum

import attrs

from .errors import ProtocolError, Reason
from .frames import MAX_STREAM_ID, FrameKind, describe_frame


class Side(enum.Enum):
    """Which end of the connection this codec is on."""

    CONNECTOR = "connector"  # dialled out: sends HELLO, opens odd stream ids
    ACCEPTOR = "acceptor"  # accepted: sends HELLO_ACK, opens even stream ids

    @property
    def peer(self) -> Side:
        """The other end."""
        return Side.ACCEPTOR if self is Side.CONNECTOR else Side.CONNECTOR

    @property
    def first_stream_id(self) -> int:
        """The first id this side opens: 1 for the connector, 2 for the acceptor."""
        return 1 if self is Side.CONNECTOR else 2


def opener_of(stream_id: int) -> Side:
    """The side that opened `stream_id` (nonzero), from its parity."""
    return Side.CONNECTOR if stream_id & 1 else Side.ACCEPTOR


@attrs.define
class StreamIds:
    """One connection's stream-id state, from `side`'s point of view.

    `open_local()` hands out this side's next id; `accept_peer_open(id)` checks
    that a peer's STREAM_OPEN uses the peer's parity and a fresh, greater id;
    `check_known(id)` checks that a non-OPEN stream frame names a stream that
    was opened at some point (it may be closed since: late frames are the
    stream layer's business, not a protocol error).
    """

    side: Side
    last_local: int = 0
    last_peer: int = 0

    def open_local(self) -> int:
        """Allocate the next id for a stream this side opens."""
        next_id = self.last_local + 2 if self.last_local else self.side.first_stream_id
        if next_id > MAX_STREAM_ID:
            raise ProtocolError(
                f"no stream ids left for the {self.side.value}",
                reason=Reason.STREAM_IDS_EXHAUSTED,
            )
        self.last_local = next_id
        return next_id

    def accept_peer_open(self, stream_id: int, flags: int = 0) -> None:
        """Record a STREAM_OPEN from the peer; a reused or out-of-order id raises."""
        where = describe_frame(FrameKind.STREAM_OPEN, flags, stream_id)
        if stream_id == 0 or opener_of(stream_id) is not self.side.peer:
            raise ProtocolError(
                f"STREAM_OPEN with an id of the wrong parity for the {self.side.peer.value}: "
                f"{where}",
                reason=Reason.WRONG_SENDER,
                kind=FrameKind.STREAM_OPEN,
                flags=flags,
                stream_id=stream_id,
            )
        if stream_id <= self.last_peer:
            raise ProtocolError(
                f"STREAM_OPEN reuses or goes back on a stream id (last opened by the peer: "
                f"{self.last_peer}): {where}",
                reason=Reason.STREAM_ID_REUSED,
                kind=FrameKind.STREAM_OPEN,
                flags=flags,
                stream_id=stream_id,
            )
        self.last_peer = stream_id

    def check_known(self, kind: int, flags: int, stream_id: int) -> None:
        """Raise if a non-OPEN stream frame names an id that was never opened."""
        last = self.last_local if opener_of(stream_id) is self.side else self.last_peer
        if stream_id > last:
            raise ProtocolError(
                "frame for a stream that was never opened: "
                + describe_frame(kind, flags, stream_id),
                reason=Reason.STREAM_NOT_OPENED,
                kind=kind,
                flags=flags,
                stream_id=stream_id,
            )
