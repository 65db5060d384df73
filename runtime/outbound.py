"""The outbound side of a connection: each stream's link, its frame queue, and the fair order.

Every stream on a connection gets a `StreamLink`, the `PeerLink` its actor
delivers to: a delivery only appends to the stream's queue (it never blocks
and never raises). `Outbound.fill` then turns the queues into bytes for one
`send_all`: connection control frames first, then coalesced STREAM_CREDIT
frames, then the streams' frames round robin, one frame per stream per turn,
so fragments of a huge chunk on one stream interleave with small chunks on
the others. A queue holds at most the chunks the peer's credit allowed, plus
OPEN, END, REPLY and ERROR, each at most once: nothing here is unbounded.
"""

from __future__ import annotations

from collections import deque
from typing import Final

import trio
from streamlet.codec import (
    HEADER,
    HEADER_SIZE,
    MAX_WINDOW,
    CreditPayload,
    ErrorPayload,
    Flags,
    Frame,
    FrameEncoder,
    FrameKind,
    StreamError,
)

_CHUNK: Final = FrameKind.STREAM_CHUNK
_REPLY: Final = FrameKind.STREAM_REPLY
_END: Final = FrameKind.STREAM_END
_NO_FLAGS: Final = int(Flags.NONE)
_FIN: Final = int(Flags.FIN)
_MORE: Final = int(Flags.MORE_FRAMES)
_BLANK_HEADER: Final = bytes(HEADER_SIZE)
WRITE_BATCH: Final = 256 * 1024  # bytes per send_all (the limit given to `fill`), one frame more
MAX_QUEUED_CONTROL: Final = 32  # PONGs beyond this many unsent ones are dropped (a PING flood)

# One queued stream frame: kind, payload (a whole message for CHUNK / REPLY), FIN.
_Item = tuple[FrameKind, bytes, bool]


class StreamLink:
    """One stream's link to the carrier: queues its deliveries as frames, counts its credit.

    `recv_credit` is what the peer may still send on this stream (the window
    this side granted, minus the chunks received, plus the credit returned);
    the carrier's reader checks each incoming chunk against it.
    """

    __slots__ = (
        "_outbound",
        "credit_due",
        "items",
        "offset",
        "recv_credit",
        "scheduled",
        "stream_id",
    )

    def __init__(self, outbound: Outbound, stream_id: int, recv_window: int) -> None:
        self._outbound = outbound
        self.stream_id = stream_id
        self.recv_credit = recv_window
        self.items: deque[_Item] = deque()
        self.offset = 0  # bytes of items[0]'s payload already written as fragments
        self.credit_due = 0  # credit granted by the stream and not yet sent
        self.scheduled = False  # whether this link is in the outbound ring

    def __repr__(self) -> str:
        return f"<StreamLink {self.stream_id}: {len(self.items)} frames queued>"

    # -- PeerLink ------------------------------------------------------------------------

    def deliver_chunk(self, payload: bytes) -> None:
        """Queue a STREAM_CHUNK (fragmented when written, if it is larger than a frame)."""
        self._queue((_CHUNK, payload, False), len(payload))

    def deliver_end(self) -> None:
        """Queue the half-close: FIN on a queued last chunk, else a STREAM_END frame."""
        items = self.items
        if items:
            kind, payload, fin = items[-1]
            if kind is _CHUNK and not fin:
                items[-1] = (kind, payload, True)
                return
        self._queue((_END, b"", False), 0)

    def deliver_error(self, error: StreamError) -> None:
        """Queue a STREAM_ERROR; it goes after what is already queued, so order is kept."""
        payload = ErrorPayload.from_stream_error(error).encode()
        self._queue((FrameKind.STREAM_ERROR, payload, False), 0)

    def deliver_reply(self, payload: bytes) -> None:
        """Queue the STREAM_REPLY (fragmented when written, if larger than a frame)."""
        self._queue((_REPLY, payload, False), len(payload))

    def grant_credit(self, increment: int) -> None:
        """Return `increment` bytes of credit to the peer: coalesced into one STREAM_CREDIT."""
        outbound = self._outbound
        if outbound.dead:
            return
        self.recv_credit += increment
        if not self.credit_due:
            outbound.credit_waiting.append(self)
        self.credit_due += increment
        outbound.wake()

    # -- the carrier's side --------------------------------------------------------------

    def queue_open(self, payload: bytes, *, fin: bool = False) -> None:
        """Queue the STREAM_OPEN that starts a stream this side opened."""
        self._queue((FrameKind.STREAM_OPEN, payload, fin), 0)

    def _queue(self, item: _Item, size: int) -> None:
        outbound = self._outbound
        if outbound.dead:
            return
        self.items.append(item)
        outbound.queued_bytes += size
        outbound.enqueued += 1
        if not self.scheduled:
            self.scheduled = True
            outbound.ring.append(self)
        outbound.wake()


class Outbound:
    """Every frame waiting to leave on one connection; `fill` writes the next batch of them."""

    def __init__(self, encoder: FrameEncoder) -> None:
        self.encoder = encoder
        self.control: deque[Frame] = deque()  # connection frames: PING, PONG, BYE
        self.credit_waiting: list[StreamLink] = []
        self.ring: deque[StreamLink] = deque()
        self.queued_bytes = 0  # CHUNK and REPLY payload bytes queued and not yet written
        self.enqueued = 0  # stream frames ever queued: the writer watches it grow while gathering
        self.dead = False  # the connection is gone: nothing is queued any more
        self._work = trio.Event()

    def link(self, stream_id: int, recv_window: int) -> StreamLink:
        """A new stream's link; `recv_window` is the credit this side grants the peer on it."""
        return StreamLink(self, stream_id, recv_window)

    def wake(self) -> None:
        """Tell the writer there is something to write."""
        self._work.set()

    @property
    def has_work(self) -> bool:
        """Whether any frame is waiting."""
        return bool(self.control or self.credit_waiting or self.ring)

    async def wait_for_work(self) -> None:
        """Wait until a frame is waiting (returns at once if one is)."""
        while not self.has_work:
            self._work = trio.Event()
            await self._work.wait()

    def queue_control(self, frame: Frame) -> None:
        """Queue a connection frame (it leaves before any stream frame)."""
        if self.dead or (frame.kind is FrameKind.PONG and len(self.control) >= MAX_QUEUED_CONTROL):
            return
        self.control.append(frame)
        self.wake()

    def kill(self) -> None:
        """The connection is gone: drop every queued frame; later deliveries go nowhere."""
        self.dead = True
        for link in self.ring:
            link.items.clear()
            link.scheduled = False
        self.ring.clear()
        self.credit_waiting.clear()
        self.control.clear()
        self.queued_bytes = 0

    def fill(self, out: bytearray, limit: int) -> None:
        """Append frames to `out` until it holds about `limit` bytes or nothing is left.

        Control frames first, then credit, then one frame per stream per turn.
        """
        encode_into = self.encoder.encode_into
        control = self.control
        while control:
            encode_into(out, control.popleft())
        if self.credit_waiting:
            for link in self.credit_waiting:
                due, link.credit_due = link.credit_due, 0
                while due > 0:
                    increment = min(due, MAX_WINDOW)
                    due -= increment
                    payload = CreditPayload(increment).encode()
                    _append(out, FrameKind.STREAM_CREDIT, _NO_FLAGS, link.stream_id, payload)
            self.credit_waiting.clear()
        ring = self.ring
        max_payload = self.encoder.max_payload_size
        while ring and len(out) < limit:
            link = ring.popleft()
            self._write_one(link, out, max_payload)
            if link.items:
                ring.append(link)
            else:
                link.scheduled = False

    def _write_one(self, link: StreamLink, out: bytearray, max_payload: int) -> None:
        """Write the next frame of one stream: a whole small message or one fragment."""
        kind, payload, fin = link.items[0]
        if kind is not _CHUNK and kind is not _REPLY:
            _append(out, kind, _FIN if fin else _NO_FLAGS, link.stream_id, payload)
            link.items.popleft()
            return
        offset = link.offset
        rest = len(payload) - offset
        if rest > max_payload:
            end = offset + max_payload
            with memoryview(payload) as view:
                _append(out, kind, _MORE, link.stream_id, view[offset:end])
            link.offset = end
            self.queued_bytes -= max_payload
            return
        flags = _FIN if fin else _NO_FLAGS
        if offset:
            with memoryview(payload) as view:
                _append(out, kind, flags, link.stream_id, view[offset:])
        else:
            _append(out, kind, flags, link.stream_id, payload)
        link.offset = 0
        link.items.popleft()
        self.queued_bytes -= rest


def _append(
    out: bytearray, kind: int, flags: int, stream_id: int, payload: bytes | memoryview
) -> None:
    """Append one stream frame to `out` without building a `Frame`.

    These are this side's own stream frames, built only here from the actor's
    deliveries, so the catalog check the encoder does per frame is skipped on
    this hot path; the peer's decoder still checks every header.
    """
    start = len(out)
    out += _BLANK_HEADER
    HEADER.pack_into(out, start, HEADER_SIZE + len(payload), kind, flags, 0, stream_id)
    out += payload
