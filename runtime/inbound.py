"""The inbound side of a connection: the reader, and where each frame from the peer goes.

The reader decodes what the peer wrote and routes each frame without ever
blocking: a stream frame to its stream (`StreamTable.route`; the credit this
side granted guarantees room), PING to a PONG in the outbound queue, PONG to
the keepalive, BYE to the start of the drain, and STREAM_OPEN to a new stream
that the router serves in a task of its own (`dispatch.serve_stream`), unless
it is refused. It mirrors `outbound`, the writer's queue. The carrier owns the
connection's lifetime; the reader reports to it when the peer breaks the
protocol, the transport ends, or a served stream ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import trio
from streamlet.codec import (
    ByePayload,
    Flags,
    Frame,
    FrameDecoder,
    FrameKind,
    OpenPayload,
    ProtocolError,
    StatusCode,
    StreamError,
)

from .carrier_errors import PeerClosedError, PeerProtocolError, describe_transport_error
from .dispatch import CallInfo, serve_stream
from .keepalive import Keepalive
from .outbound import WRITE_BATCH, Outbound
from .stream_table import StreamEntry, StreamTable, server_stream_for

if TYPE_CHECKING:
    from .carrier import Carrier

# The reader asks for up to a whole write batch at a time: one wakeup then takes in
# what one `send_all` of the peer wrote. With 64 KiB reads (a quarter batch) the
# reader woke four times as often, and 1 MiB chunks over loopback went at about
# half the rate (`streamlet bench tcp_1mib`: ratio 0.49 before, about 0.65 after,
# against a raw socket read the same way). Only the call's buffer is this size:
# nothing more is held per connection.
READ_SIZE: Final = WRITE_BATCH


class Inbound:
    """One connection's reader: decodes the peer's bytes and routes each frame, never blocking.

    It shares the carrier's decoder, stream table, outbound queue and keepalive,
    and calls back into the carrier (`_fail`, `_transport_ended`,
    `_check_drained`, `_unregister`) for everything that ends the connection or
    a stream on it.
    """

    def __init__(
        self,
        carrier: Carrier,
        transport: trio.abc.Stream,
        decoder: FrameDecoder,
        streams: StreamTable,
        outbound: Outbound,
        keepalive: Keepalive,
    ) -> None:
        self.bye_received = False  # the peer sent BYE OK: it is draining, no new streams
        self._carrier = carrier
        self._transport = transport
        self._decoder = decoder
        self._streams = streams
        self._outbound = outbound
        self._keepalive = keepalive
        self._nursery: trio.Nursery | None = None

    async def run(self, nursery: trio.Nursery) -> None:
        """Read and route frames until the transport ends or the peer breaks the protocol.

        Streams the peer opens are served in `nursery`. Returns after telling
        the carrier how the connection ended.
        """
        self._nursery = nursery
        decoder = self._decoder
        receive_some = self._transport.receive_some
        on_frame = self._on_frame
        try:
            while True:
                for frame in decoder:
                    on_frame(frame)
                data = await receive_some(READ_SIZE)
                if not data:
                    self._carrier._transport_ended(self._eof_reason())
                    return
                decoder.receive_data(data)
        except ProtocolError as exc:
            message = f"protocol error from the peer: {exc}"
            bye = ByePayload(StatusCode.INTERNAL, str(exc), self._streams.ids.last_peer)
            self._carrier._fail(PeerProtocolError(message), bye)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._carrier._transport_ended(
                "the connection broke while reading: " + describe_transport_error(exc)
            )

    def _eof_reason(self) -> str:
        """Why the byte stream ended: a clean EOF, or one in the middle of a frame (a cut)."""
        try:
            self._decoder.receive_eof()
        except ProtocolError as exc:
            return f"the connection was cut: {exc}"
        return "the peer closed the connection without BYE"

    def _on_frame(self, frame: Frame) -> None:
        """Route one frame; a `ProtocolError` is a connection error (spec section 9)."""
        if frame.stream_id == 0:
            self._on_connection_frame(frame)
            return
        if frame.kind is FrameKind.STREAM_OPEN:
            self._on_open(frame)
            return
        self._streams.route(frame)

    def _on_connection_frame(self, frame: Frame) -> None:
        kind = frame.kind
        if kind is FrameKind.PING:
            self._outbound.queue_control(Frame(FrameKind.PONG, Flags.NONE, 0, frame.payload))
        elif kind is FrameKind.PONG:
            self._keepalive.pong(frame.payload)
        elif kind is FrameKind.BYE:
            self._on_bye(ByePayload.decode(frame.payload))
        else:
            raise ProtocolError(
                f"{kind.name} after the handshake: it is sent once, as the first frame",
                kind=kind,
                flags=frame.flags,
                stream_id=0,
            )

    def _on_bye(self, bye: ByePayload) -> None:
        if bye.code is not StatusCode.OK:
            reason = f"the peer closed the connection: {bye.code.name}: {bye.reason}"
            self._carrier._fail(PeerClosedError(reason))
            return
        self.bye_received = True
        refused = StreamError(
            StatusCode.UNAVAILABLE,
            "the peer is shutting down (BYE) and did not process this stream; it may be retried",
        )
        self._streams.refuse_above(bye.last_stream_id, refused)
        self._carrier._check_drained()

    # -- streams the peer opens ----------------------------------------------------------

    def _on_open(self, frame: Frame) -> None:
        stream_id = frame.stream_id
        self._streams.ids.accept_peer_open(stream_id, frame.flags)
        carrier = self._carrier
        settings = carrier.settings
        link = self._outbound.link(stream_id, settings.initial_window)
        try:
            request = OpenPayload.decode(frame.payload)
        except ProtocolError as exc:
            link.deliver_error(StreamError(StatusCode.INVALID_ARGUMENT, f"bad STREAM_OPEN: {exc}"))
            return
        refusal = self._streams.refusal(
            request,
            draining=carrier._draining,
            serving=carrier.router is not None,
            max_streams=settings.max_streams,
        )
        if refusal is not None:
            link.deliver_error(refusal)
            return
        assert carrier.peer_settings is not None and self._nursery is not None
        stream = server_stream_for(
            stream_id,
            request,
            window=settings.initial_window,
            max_chunk_size=settings.max_chunk_size,
            link=link,
            peer_max_chunk_size=carrier.peer_settings.max_chunk_size,
        )
        entry = self._streams.add(stream, link, served=True)
        if frame.flags & Flags.FIN:
            stream.deliver_end()
        call = CallInfo(
            request.method, request.mode, request.encoding, request.metadata, request.deadline
        )
        self._nursery.start_soon(self._serve, entry, call, name=f"streamlet serve {stream_id}")

    async def _serve(self, entry: StreamEntry, call: CallInfo) -> None:
        router = self._carrier.router
        assert router is not None
        try:
            await serve_stream(router, entry.stream, call)
        finally:
            self._carrier._unregister(entry)
