"""The carrier: one connection's task, carrying its streams' deliveries as STREAM_* frames.

A `Carrier` runs over any `trio.abc.Stream` (TCP, TLS, a Unix socket, a memory
pair). After the handshake it runs three tasks: the reader (`inbound.Inbound`)
decodes frames and routes each to its stream without ever blocking (credit
guarantees room), the writer drains the fair outbound queue
(`outbound.Outbound`) in coalesced `send_all` calls, and the keepalive pings
the peer. Streams the peer opens are served by the router
(`dispatch.serve_stream`), a task per stream; streams this side opens live in
their owner's `async with open_stream(...)`. This module holds the connection's
lifetime (run, shutdown, the drain, the end), the writer, and `open_stream`.

However the connection ends (BYE drained, EOF, a broken transport, garbage
from the peer, a silent peer), every stream still on it ends at once with
UNAVAILABLE, every task stops, and `run` returns (graceful) or raises a
`CarrierError` saying why.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Final

import attrs
import trio
from streamlet.actors import Role, Stream, open_stream
from streamlet.codec import (
    MIN_MAX_FRAME_SIZE,
    ByePayload,
    Encoding,
    FrameDecoder,
    FrameEncoder,
    HelloPayload,
    Mode,
    OpenPayload,
    ProtocolError,
    Side,
    StatusCode,
    StreamError,
)

from .carrier_errors import CarrierError, ConnectionLostError, describe_transport_error
from .dispatch import enforce_deadline
from .handshake import bye_frame, handshake, send_bye
from .inbound import Inbound
from .keepalive import Keepalive
from .outbound import WRITE_BATCH, Outbound
from .router import Router
from .settings import DEFAULT_SETTINGS, ConnectionSettings
from .stream_table import StreamEntry, StreamTable

log = logging.getLogger("streamlet.carrier")

_NEVER_STARTED: Final = StreamError(
    StatusCode.CANCELLED, "the opener was cancelled before the stream started"
)

GATHER_IDLE_ROUNDS: Final = 3  # scheduling rounds without a new frame before the writer writes


@attrs.frozen
class CarrierInfo:
    """A snapshot of one connection, for debugging and tests."""

    side: Side
    streams: int  # in the table: opened here and not yet closed, or being served
    served_streams: int
    queued_bytes: int  # chunk and reply bytes in the outbound queue
    queued_streams: int  # streams with frames waiting in the outbound queue
    bye_sent: bool
    bye_received: bool
    closed: bool


class Carrier:
    """One connection: the handshake, the reader, the writer, keepalive, and the stream table."""

    def __init__(
        self,
        transport: trio.abc.Stream,
        *,
        side: Side,
        router: Router | None = None,
        settings: ConnectionSettings = DEFAULT_SETTINGS,
    ) -> None:
        self.side = side
        self.router = router
        self.settings = settings
        self.peer_settings: HelloPayload | None = None
        self.failure: CarrierError | None = None
        self._transport = transport
        self._decoder = FrameDecoder(side, settings.max_frame_size)
        self._encoder = FrameEncoder(side, MIN_MAX_FRAME_SIZE)  # the peer's value after HELLO
        self._outbound = Outbound(self._encoder)
        self._streams = StreamTable(side, settings.max_chunk_size)
        self._keepalive = Keepalive(self._outbound)
        self._inbound = Inbound(
            self, transport, self._decoder, self._streams, self._outbound, self._keepalive
        )
        self._nursery: trio.Nursery | None = None
        self._started = False
        self._bye_sent = False
        self._writing = False
        self._final_bye: ByePayload | None = None
        self._done = trio.Event()  # the connection is over: run cancels its tasks
        self._stopped = trio.Event()  # run has returned

    def __repr__(self) -> str:
        return f"<Carrier {self.side.value}: {len(self._streams)} streams>"

    @property
    def is_open(self) -> bool:
        """Whether new streams may be opened on this connection."""
        return self._nursery is not None and not self._done.is_set() and not self._draining

    @property
    def _draining(self) -> bool:
        return self._bye_sent or self._inbound.bye_received

    def info(self) -> CarrierInfo:
        """A snapshot of the connection's counters."""
        return CarrierInfo(
            side=self.side,
            streams=len(self._streams),
            served_streams=self._streams.served,
            queued_bytes=self._outbound.queued_bytes,
            queued_streams=len(self._outbound.ring),
            bye_sent=self._bye_sent,
            bye_received=self._inbound.bye_received,
            closed=self._done.is_set(),
        )

    # -- running -------------------------------------------------------------------------

    async def run(
        self, *, task_status: trio.TaskStatus[Carrier] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Handshake, then carry frames until the connection ends.

        `task_status.started(self)` comes after a successful handshake. Returns
        after a graceful end (BYE drained, or this side closed it); raises a
        `CarrierError` (`HandshakeError`, `PeerProtocolError`, ...) otherwise.
        """
        if self._started:
            raise RuntimeError("a carrier runs once")
        self._started = True
        try:
            peer = await handshake(self._transport, self._decoder, self._encoder, self.settings)
        except BaseException:
            await trio.aclose_forcefully(self._transport)
            self._stopped.set()
            raise
        self.peer_settings = peer
        self._encoder.max_frame_size = peer.max_frame_size
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._inbound.run, nursery)
                nursery.start_soon(self._write_loop)
                if self.settings.ping_interval is not None:
                    nursery.start_soon(
                        self._keepalive.run,
                        self.settings.ping_interval,
                        self.settings.ping_timeout,
                        self._terminate,
                    )
                task_status.started(self)
                await self._done.wait()
                nursery.cancel_scope.cancel()
        finally:
            if not self._done.is_set():  # cancelled from outside: tell the peer, best effort
                last = self._streams.ids.last_peer
                bye = ByePayload(StatusCode.UNAVAILABLE, "the sender is shutting down", last)
                self._terminate(None, "this side is shutting down", bye)
            with trio.CancelScope(shield=True):
                await self._close_transport()
            self._stopped.set()
        if self.failure is not None:
            raise self.failure

    async def _close_transport(self) -> None:
        if self._final_bye is not None and not self._writing:
            await send_bye(self._transport, self._encoder, self._final_bye)
        if self.failure is None:
            with trio.move_on_after(self.settings.close_timeout):
                await self._transport.aclose()
        await trio.aclose_forcefully(self._transport)

    def _terminate(
        self, failure: CarrierError | None, reason: str, bye: ByePayload | None = None
    ) -> None:
        """End the connection now: every stream on it fails with UNAVAILABLE, tasks stop."""
        if self._done.is_set():
            return
        if failure is not None:
            self.failure = failure
            log.warning("streamlet connection (%s) failed: %s", self.side.value, failure)
        self._final_bye = bye
        self._outbound.kill()
        self._streams.fail_all(StreamError(StatusCode.UNAVAILABLE, f"connection lost: {reason}"))
        self._done.set()

    def _fail(self, failure: CarrierError, bye: ByePayload | None = None) -> None:
        self._terminate(failure, failure.message, bye)

    async def shutdown(self, reason: str = "", *, grace: float | None = None) -> None:
        """Close gracefully: BYE, no new streams, wait for the open ones, then close.

        After `grace` seconds (default: the settings' `close_timeout`) the streams
        still open end with UNAVAILABLE and the connection closes anyway.
        Returns once the carrier has stopped.
        """
        if self._nursery is not None and not self._done.is_set() and not self._bye_sent:
            self._bye_sent = True
            bye = ByePayload(StatusCode.OK, reason, self._streams.ids.last_peer)
            self._outbound.queue_control(bye_frame(bye))
        self._check_drained()
        with trio.move_on_after(self.settings.close_timeout if grace is None else grace):
            await self._done.wait()
        self._terminate(None, "the connection was closed by this side before the stream ended")
        if self._started:
            await self._stopped.wait()

    def _check_drained(self) -> None:
        if (
            self._draining
            and not self._streams
            and not self._writing
            and not self._outbound.has_work
        ):
            self._terminate(None, "the connection was closed")

    def _unregister(self, entry: StreamEntry) -> None:
        self._streams.remove(entry)
        self._check_drained()

    # -- the writer ----------------------------------------------------------------------

    async def _write_loop(self) -> None:
        outbound = self._outbound
        send_all = self._transport.send_all
        try:
            while True:
                await outbound.wait_for_work()
                await self._gather()
                out = bytearray()
                outbound.fill(out, WRITE_BATCH)
                self._writing = True
                await send_all(out)
                self._writing = False
                if self._draining:
                    self._check_drained()
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._writing = False
            self._transport_ended(
                "the connection broke while writing: " + describe_transport_error(exc)
            )

    async def _gather(self) -> None:
        """Let producers that are mid-burst queue more before writing, so writes coalesce.

        A sender's next chunk needs a scheduling round or two (owner, then actor);
        the writer yields while the queue keeps growing, up to a batch.
        """
        outbound = self._outbound
        seen = outbound.enqueued
        idle = 0
        while idle < GATHER_IDLE_ROUNDS and outbound.queued_bytes < WRITE_BATCH:
            await trio.lowlevel.checkpoint()
            if outbound.enqueued == seen:
                idle += 1
            else:
                seen = outbound.enqueued
                idle = 0

    def _transport_ended(self, reason: str) -> None:
        if self._draining:
            self._terminate(None, reason)
        else:
            self._fail(ConnectionLostError(reason))

    # -- streams this side opens ---------------------------------------------------------

    @asynccontextmanager
    async def open_stream(
        self,
        method: str,
        *,
        mode: Mode | str,
        encoding: Encoding | str = Encoding.CBOR,
        metadata: Mapping[str, str] | None = None,
        deadline: float | None = None,
    ) -> AsyncIterator[Stream]:
        """Open a stream to the peer's `method`; its actor runs for the body.

        Leaving normally closes the stream; an exception or a cancellation
        aborts it with CANCELLED (the peer hears it). With a `deadline` (in
        seconds) the stream aborts with DEADLINE_EXCEEDED here and at the peer
        once it passes, even if the peer never answers. Raises `StreamError`
        UNAVAILABLE if the connection is closed or shutting down.
        """
        mode, encoding = Mode(mode), Encoding(encoding)
        if deadline is not None and not deadline > 0:
            raise ValueError(f"a deadline must be > 0 seconds, got {deadline!r}")
        settings = self.settings
        request = OpenPayload(
            method, mode, encoding, settings.initial_window, deadline, dict(metadata or {})
        )
        try:
            payload = request.encode()
        except ProtocolError as exc:
            raise ValueError(f"cannot open {method!r}: {exc}") from None
        self._check_can_open()
        assert self.peer_settings is not None and self._nursery is not None
        if encoding not in self.peer_settings.encodings:
            raise StreamError(
                StatusCode.UNIMPLEMENTED,
                f"the peer does not understand the {encoding.value!r} chunk encoding "
                f"(its HELLO lists {[known.value for known in self.peer_settings.encodings]})",
            )
        stream_id = self._streams.ids.open_local()
        link = self._outbound.link(stream_id, settings.initial_window)
        link.queue_open(payload)  # now, in id order: the peer refuses ids that go back
        peer_window = self.peer_settings.initial_window
        peer_chunk = min(self.peer_settings.max_chunk_size, peer_window)
        entry: StreamEntry | None = None
        timer = trio.CancelScope()
        try:
            async with open_stream(
                id=stream_id,
                role=Role.CLIENT,
                mode=mode,
                encoding=encoding,
                window=settings.initial_window,
                max_chunk_size=settings.max_chunk_size,
            ) as stream:
                stream.link(link, window=peer_window, max_chunk_size=peer_chunk)
                entry = self._streams.add(stream, link, served=False)
                if deadline is not None:
                    self._nursery.start_soon(self._expire, timer, stream, method, deadline)
                try:
                    yield stream
                finally:
                    timer.cancel()
        finally:
            if entry is not None:
                self._unregister(entry)
            else:  # cancelled before the actor was linked: the peer must still hear the end
                link.deliver_error(_NEVER_STARTED)

    def _check_can_open(self) -> None:
        if self._nursery is None:
            raise StreamError(StatusCode.UNAVAILABLE, "the connection is not running")
        if self._done.is_set():
            why = f": {self.failure.message}" if self.failure is not None else ""
            raise StreamError(StatusCode.UNAVAILABLE, f"the connection is closed{why}")
        if self._bye_sent:
            raise StreamError(
                StatusCode.UNAVAILABLE, "the connection is shutting down (BYE sent): no new streams"
            )
        if self._inbound.bye_received:
            raise StreamError(
                StatusCode.UNAVAILABLE,
                "the peer is shutting down (BYE received): no new streams",
            )

    @staticmethod
    async def _expire(timer: trio.CancelScope, stream: Stream, method: str, seconds: float) -> None:
        with timer:
            await enforce_deadline(stream, method, seconds)
