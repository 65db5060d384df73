"""The streams of one connection: their ids, and how an incoming stream frame reaches its actor.

`StreamTable` owns the connection's `StreamIds`, one entry per live stream
(the actor, its outbound link, its reassembler) and the count of streams the
peer opened. `route` delivers a decoded non-OPEN stream frame to its stream
without ever blocking: the credit this side granted bounds every chunk, and a
peer that goes beyond it gets that one stream reset with RESOURCE_EXHAUSTED.
Frames for a stream already gone are dropped (lenient receive); a frame for
an id never opened is a `ProtocolError`, a connection error.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs
from streamlet.actors import Role, Stream
from streamlet.codec import (
    CreditPayload,
    ErrorPayload,
    Flags,
    Frame,
    FrameKind,
    OpenPayload,
    ProtocolError,
    Reassembler,
    Side,
    StatusCode,
    StreamError,
    StreamIds,
    chunk_charge,
)

from .outbound import StreamLink


@attrs.define(eq=False)
class StreamEntry:
    """One stream in the table: the actor, its link, its fragment state."""

    stream: Stream
    link: StreamLink
    reassembler: Reassembler
    served: bool  # opened by the peer, served by the router here
    ignored: bool = False  # reset by the carrier (overrun, refused by BYE, lost): frames dropped

    @property
    def stream_id(self) -> int:
        """The stream's id on the connection."""
        return self.link.stream_id


class StreamTable:
    """The live streams of one connection and its stream-id state."""

    def __init__(self, side: Side, max_chunk_size: int) -> None:
        self.ids = StreamIds(side)
        self.served = 0  # live streams the peer opened
        self._max_chunk_size = max_chunk_size
        self._entries: dict[int, StreamEntry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[StreamEntry]:
        return iter(list(self._entries.values()))

    def add(self, stream: Stream, link: StreamLink, *, served: bool) -> StreamEntry:
        """Register a linked stream; its frames are routed to it from now on."""
        reassembler = Reassembler(stream.id, self._max_chunk_size)
        entry = StreamEntry(stream, link, reassembler, served)
        self._entries[stream.id] = entry
        if served:
            self.served += 1
        return entry

    def remove(self, entry: StreamEntry) -> None:
        """Forget a stream whose actor is done; its later frames are dropped."""
        if self._entries.get(entry.stream_id) is entry:
            del self._entries[entry.stream_id]
            if entry.served:
                self.served -= 1

    def fail_all(self, error: StreamError) -> None:
        """Every stream still here gets `error` at once (the connection is gone)."""
        for entry in self:
            entry.ignored = True
            entry.stream.deliver_error(error)

    def refuse_above(self, last_stream_id: int, error: StreamError) -> None:
        """Fail the streams this side opened above the id a peer's BYE says it processed."""
        for entry in self:
            if not entry.served and entry.stream_id > last_stream_id and not entry.ignored:
                entry.ignored = True
                entry.stream.deliver_error(error)

    def refusal(
        self, request: OpenPayload, *, draining: bool, serving: bool, max_streams: int
    ) -> StreamError | None:
        """Why a peer's new stream is refused before it runs, or None to serve it."""
        if draining:
            return StreamError(
                StatusCode.UNAVAILABLE, "the connection is shutting down (BYE): no new streams"
            )
        if not serving:
            return StreamError(
                StatusCode.UNIMPLEMENTED,
                f"this side of the connection serves no methods (no router): {request.method!r}",
            )
        if self.served >= max_streams:
            return StreamError(
                StatusCode.RESOURCE_EXHAUSTED,
                f"too many concurrent streams: the limit is {max_streams}",
            )
        return None

    def route(self, frame: Frame) -> None:
        """Deliver a non-OPEN stream frame to its stream; never blocks."""
        stream_id = frame.stream_id
        kind = frame.kind
        self.ids.check_known(kind, frame.flags, stream_id)
        entry = self._entries.get(stream_id)
        if entry is None or entry.ignored:
            return  # a late frame for a stream already gone here
        message = entry.reassembler.feed(frame)
        if message is None:
            return
        stream = entry.stream
        if kind is FrameKind.STREAM_CHUNK:
            payload = message.payload
            charge = chunk_charge(len(payload))
            link = entry.link
            if charge > link.recv_credit:
                self._reset_overrun(entry, charge)
                return
            link.recv_credit -= charge
            stream.deliver_chunk(payload)
            if message.flags & Flags.FIN:
                stream.deliver_end()
        elif kind is FrameKind.STREAM_CREDIT:
            stream.grant_credit(CreditPayload.decode(message.payload).increment)
        elif kind is FrameKind.STREAM_END:
            stream.deliver_end()
        elif kind is FrameKind.STREAM_REPLY:
            stream.deliver_reply(message.payload)
        elif kind is FrameKind.STREAM_ERROR:
            try:
                error = ErrorPayload.decode(message.payload).to_stream_error()
            except ProtocolError as exc:
                error = StreamError(StatusCode.INTERNAL, f"malformed STREAM_ERROR: {exc}")
            stream.deliver_error(error)

    def _reset_overrun(self, entry: StreamEntry, charge: int) -> None:
        """The peer sent beyond the credit granted: reset that stream with RESOURCE_EXHAUSTED."""
        error = StreamError(
            StatusCode.RESOURCE_EXHAUSTED,
            f"peer overran its credit on stream {entry.stream_id}: a {charge}-byte chunk "
            f"with {entry.link.recv_credit} bytes of credit left",
        )
        entry.ignored = True
        entry.link.deliver_error(error)
        entry.stream.deliver_error(error)


def server_stream_for(
    stream_id: int,
    request: OpenPayload,
    *,
    window: int,
    max_chunk_size: int,
    link: StreamLink,
    peer_max_chunk_size: int,
) -> Stream:
    """The server-role stream for a peer's STREAM_OPEN, linked with the OPEN's window."""
    stream = Stream(
        id=stream_id,
        role=Role.SERVER,
        mode=request.mode,
        encoding=request.encoding,
        window=window,
        max_chunk_size=max_chunk_size,
    )
    peer_window = request.initial_window
    stream.link(link, window=peer_window, max_chunk_size=min(peer_max_chunk_size, peer_window))
    return stream
