"""The stream actor: one trio task per stream, applying the machine to its mailbox.

`Stream` is both the owner's handle (send, recv, close, ...) and the peer's
inbound side (deliver_*, grant_credit). Every owner call and every delivery is
a message in one bounded trio memory channel; the actor task (`Stream.run`)
drains it in bursts and applies each message to the `StreamMachine`, which
answers parked callers through `trio.lowlevel.reschedule` (no Event per call).
Once the owner closed or aborted the stream the task ends, and what is left
(late calls and deliveries) is applied in place: no one else can touch it then.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Final

import attrs
import outcome
import trio
from streamlet.codec.chunks import Encoding, decode_chunk, encode_chunk
from streamlet.codec.errors import ProtocolError
from streamlet.codec.modes import Mode
from streamlet.codec.status import StatusCode, StreamError

from .errors import ChunkTooLargeError, StreamStateError
from .link import NullLink, PeerLink
from .machine import DEFAULT_WINDOW, MIN_CHUNK_CHARGE, StreamMachine, Waiter
from .table import (
    ANSWERED_BY_EFFECTS,
    Event,
    RecvState,
    ReplyState,
    Role,
    SendState,
    StreamState,
)

OWNER_SLOTS: Final = 64  # owner calls in the mailbox at once; more callers wait their turn
CONTROL_SLOTS: Final = 4  # END, REPLY, ERROR and one coalesced credit grant from the peer


@attrs.frozen
class StreamInfo:
    """A snapshot of one stream, for debugging (like trio's `statistics()`)."""

    id: int
    role: Role
    mode: Mode
    encoding: Encoding
    state: StreamState
    send_state: SendState
    recv_state: RecvState
    reply_state: ReplyState
    chunks_sent: int
    bytes_sent: int
    chunks_received: int
    bytes_received: int
    send_credit: int  # bytes this side may still send before the peer returns credit
    recv_credit: int  # bytes the peer may still send before this side returns credit
    buffered_chunks: int
    buffered_bytes: int  # credit charged by the buffered chunks
    waiters: int  # owner calls parked in recv, await_reply or send (waiting for credit)
    finished: bool


class _Call:
    """One owner call in flight: the message, and the task parked until it is answered."""

    __slots__ = ("arg", "event", "outcome", "task", "withdrawn")

    def __init__(self, event: Event, arg: object) -> None:
        self.event = event
        self.arg = arg
        self.task: trio.lowlevel.Task | None = None
        self.outcome: outcome.Outcome[Any] | None = None
        self.withdrawn = False

    def finish(self, result: outcome.Outcome[Any]) -> bool:
        if self.withdrawn:
            return False
        task = self.task
        if task is None:
            self.outcome = result
        else:
            self.task = None
            trio.lowlevel.reschedule(task, result)
        return True

    def abort(self, raise_cancel: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
        # A cancelled close or abort still happens; any other call is withdrawn unanswered.
        if self.event is not Event.CLOSE and self.event is not Event.ABORT:
            self.withdrawn = True
        self.task = None
        return trio.lowlevel.Abort.SUCCEEDED


@attrs.define(eq=False)
class _Grant:
    """The peer's credit grants not yet applied, coalesced into one mailbox message."""

    increment: int


_Message = _Call | _Grant | tuple[Event, object]


class Stream:
    """One stream: the owner's handle and the peer's inbound side of its actor."""

    def __init__(
        self,
        *,
        id: int = 1,
        role: Role | str,
        mode: Mode | str,
        encoding: Encoding | str = Encoding.CBOR,
        window: int = DEFAULT_WINDOW,
        max_chunk_size: int | None = None,
    ) -> None:
        self.id = id
        self.role = Role(role)
        self.mode = Mode(mode)
        self.encoding = Encoding(encoding)
        self.window = window
        self.max_chunk_size = window // 2 if max_chunk_size is None else max_chunk_size
        self._machine = StreamMachine(
            id=id,
            role=self.role,
            mode=self.mode,
            outbox=self,
            window=window,
            max_chunk_size=self.max_chunk_size,
            on_error=self._note_error,
        )
        self._reset = trio.Event()
        capacity = window // MIN_CHUNK_CHARGE + CONTROL_SLOTS + OWNER_SLOTS + 1
        self._inbox_send, self._inbox = trio.open_memory_channel[_Message](capacity)
        self._peer: PeerLink = NullLink()
        self._peer_max_chunk: int | None = None
        self._pending_grant: _Grant | None = None
        self._overrun = False
        self._owner_pending = 0
        self._slots = trio.lowlevel.ParkingLot()
        self._terminal_posted = False
        self._running = False
        self._done = False
        self._finished = trio.Event()

    def __repr__(self) -> str:
        return f"<Stream {self._machine.describe()}>"

    # -- linking -----------------------------------------------------------------------

    def link(self, peer: PeerLink, *, window: int, max_chunk_size: int) -> None:
        """Deliver to `peer` from now on; `window` and `max_chunk_size` are the peer's own.

        The peer's initial window is this side's first credit grant. A carrier
        calls this once with the values from the peer's STREAM_OPEN or HELLO.
        """
        if self._peer_max_chunk is not None:
            raise StreamStateError(f"link on {self._machine.describe()}: already linked")
        if not 0 < max_chunk_size <= window:
            raise ValueError("the peer's max_chunk_size must be > 0 and not above its window")
        self._peer = peer
        self._peer_max_chunk = max_chunk_size
        self.grant_credit(window)

    # -- the actor task ------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[Stream] = trio.TASK_STATUS_IGNORED) -> None:
        """The actor: apply mailbox messages until the owner closes or aborts the stream.

        Start it in the owner's nursery (`await nursery.start(stream.run)`); if
        that scope is cancelled or raises first, the stream aborts with
        CANCELLED and the peer hears it.
        """
        if self._running or self._done:
            raise StreamStateError(f"run on {self._machine.describe()}: already started")
        self._running = True
        task_status.started(self)
        machine = self._machine
        receive_nowait = self._inbox.receive_nowait
        try:
            while not machine.finished:
                self._handle(await self._inbox.receive())
                while not machine.finished:  # the rest of the burst, without sleeping
                    try:
                        message = receive_nowait()
                    except trio.WouldBlock:
                        break
                    self._handle(message)
                if self._overrun:
                    self._overrun = False
                    self._handle((Event.PEER_VIOLATION, _OVERRUN))
        finally:
            self._stop()

    def _stop(self) -> None:
        """End the actor: apply what is queued, abort if the owner did not finish, go inline."""
        while True:
            try:
                message = self._inbox.receive_nowait()
            except trio.WouldBlock:
                break
            self._handle(message)
        if not self._machine.finished:
            self._machine.step(Event.OWNER_DEATH)
        if self._machine.has_waiters():
            raise AssertionError(f"{self!r} finished with callers still parked")
        self._done = True
        self._inbox.close()
        self._slots.unpark_all()
        self._finished.set()

    def _handle(self, message: _Message) -> None:
        if type(message) is _Call:
            self._owner_pending -= 1
            if self._slots:
                self._slots.unpark()
            if not message.withdrawn:
                self._apply_call(message)
        elif type(message) is _Grant:
            self._pending_grant = None
            self._machine.step(Event.GRANT_CREDIT, message.increment)
        else:
            assert isinstance(message, tuple)
            event, arg = message
            if event is not Event.PEER_VIOLATION or self._machine.recv is RecvState.OPEN:
                self._machine.step(event, arg)

    def _apply_call(self, call: _Call) -> None:
        try:
            self._machine.step(call.event, call.arg, call)
        except StreamStateError as exc:
            call.finish(outcome.Error(exc))
        else:
            if call.event not in ANSWERED_BY_EFFECTS:
                call.finish(outcome.Value(None))

    def _note_error(self, error: StreamError) -> None:
        self._reset.set()

    async def wait_reset(self) -> StreamError:
        """Wait until the stream fails (an error from the peer, an abort, owner death); the error.

        A server uses it to cancel a handler whose client has gone away while
        the handler is busy with something other than the stream.
        """
        await self._reset.wait()
        error = self._machine.error
        assert error is not None
        return error

    # -- the machine's outbox ------------------------------------------------------------

    def emit_chunk(self, payload: bytes) -> None:
        self._peer.deliver_chunk(payload)

    def emit_end(self) -> None:
        self._peer.deliver_end()

    def emit_reply(self, payload: bytes) -> None:
        self._peer.deliver_reply(payload)

    def emit_error(self, error: StreamError) -> None:
        self._peer.deliver_error(error)

    def emit_credit(self, increment: int) -> None:
        self._peer.grant_credit(increment)

    def is_waiting(self, caller: Waiter) -> bool:
        return isinstance(caller, _Call) and not caller.withdrawn

    def resolve(self, caller: Waiter, value: bytes | None) -> bool:
        assert isinstance(caller, _Call)
        return caller.finish(outcome.Value(value))

    def end(self, caller: Waiter) -> bool:
        assert isinstance(caller, _Call)
        return caller.finish(outcome.Error(trio.EndOfChannel()))

    def interrupt(self, caller: Waiter) -> bool:
        assert isinstance(caller, _Call)
        error = trio.ClosedResourceError(f"the send side of stream {self.id} was closed meanwhile")
        return caller.finish(outcome.Error(error))

    def fail(self, caller: Waiter, error: BaseException) -> bool:
        assert isinstance(caller, _Call)
        return caller.finish(outcome.Error(copy.copy(error)))  # a fresh traceback per waiter

    # -- the peer's inbound side ---------------------------------------------------------

    def deliver_chunk(self, payload: bytes | bytearray | memoryview) -> None:
        """The peer sent a chunk (its encoded bytes); it must fit the credit this side granted."""
        self._deliver((Event.DELIVER_CHUNK, payload if type(payload) is bytes else bytes(payload)))

    def deliver_end(self) -> None:
        """The peer half-closed: `recv()` ends after the buffered chunks."""
        self._deliver((Event.DELIVER_END, None))

    def deliver_error(self, error: StreamError) -> None:
        """The peer failed or cancelled the stream: every waiter here gets `error`."""
        self._deliver((Event.DELIVER_ERROR, error))

    def deliver_reply(self, payload: bytes | bytearray | memoryview) -> None:
        """The server's terminal reply (its encoded bytes)."""
        self._deliver((Event.DELIVER_REPLY, bytes(payload)))

    def grant_credit(self, increment: int) -> None:
        """The peer took `increment` more bytes: this side may send that much more."""
        if increment <= 0:
            raise ValueError(f"a credit increment must be > 0, got {increment}")
        grant = self._pending_grant
        if grant is not None:
            grant.increment += increment
        elif self._done:
            self._machine.step(Event.GRANT_CREDIT, increment)
        else:
            self._pending_grant = grant = _Grant(increment)
            self._deliver(grant)

    def _deliver(self, message: _Grant | tuple[Event, object]) -> None:
        if self._done:
            self._handle(message)
            return
        try:
            self._inbox_send.send_nowait(message)
        except trio.WouldBlock:
            self._overrun = True  # only a peer beyond its credit can fill the mailbox

    # -- the owner's calls ---------------------------------------------------------------

    async def _call(self, event: Event, arg: object = None) -> Any:
        await trio.lowlevel.checkpoint_if_cancelled()
        while not self._done and self._owner_pending >= OWNER_SLOTS:
            await self._slots.park()
        return await self._post(_Call(event, arg))

    async def _post(self, call: _Call) -> Any:
        """Put the call in the mailbox and park until the actor answers (inline once it ended)."""
        if self._done:
            self._apply_call(call)
            await trio.lowlevel.cancel_shielded_checkpoint()
            assert call.outcome is not None
            return call.outcome.unwrap()
        self._owner_pending += 1
        self._inbox_send.send_nowait(call)
        call.task = trio.lowlevel.current_task()
        return await trio.lowlevel.wait_task_rescheduled(call.abort)

    def _encode(self, value: Any, what: str) -> bytes:
        payload = encode_chunk(self.encoding, value)
        data = payload if type(payload) is bytes else bytes(payload)  # never share a buffer
        limit = self._peer_max_chunk
        if limit is None:
            raise StreamStateError(f"{what} on {self._machine.describe()}: not linked to a peer")
        if len(data) > limit:
            raise ChunkTooLargeError(
                f"{what} on stream {self.id}: the encoded chunk is {len(data)} bytes, above "
                f"the peer's max chunk size of {limit} bytes; split it into smaller chunks"
            )
        return data

    async def send(self, value: Any) -> None:
        """Send one chunk; waits while the peer's window is spent.

        A unary or server_stream client sends exactly one chunk, and that send
        also ends its send side (close_send after it is a no-op).
        """
        await self._call(Event.SEND, self._encode(value, "send"))

    async def recv(self) -> Any:
        """The next chunk; `trio.EndOfChannel` after the peer's END, the stored error on failure."""
        return await self._decode(await self._call(Event.RECV), "chunk")

    async def _decode(self, payload: bytes, what: str) -> Any:
        """Decode a payload from the peer; one that is not valid resets the stream with INTERNAL."""
        try:
            return decode_chunk(self.encoding, payload)
        except ProtocolError as exc:
            message = f"stream {self.id}: the peer sent a {what} that does not decode: {exc}"
            await self.abort(StatusCode.INTERNAL, message)
            raise StreamError(StatusCode.INTERNAL, message) from exc

    def __aiter__(self) -> Stream:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.recv()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    async def close_send(self) -> None:
        """Half-close: the peer's `recv()` ends after the chunks sent so far; recv stays open."""
        await self._call(Event.CLOSE_SEND)

    async def reply(self, value: Any) -> None:
        """Server: send the terminal reply; it ends this side's sending."""
        await self._call(Event.REPLY, self._encode(value, "reply"))

    async def reply_error(
        self, code: StatusCode, message: str = "", details: Mapping[str, Any] | None = None
    ) -> None:
        """Server: end the call with an error; the peer's waiters get it as a `StreamError`."""
        await self._call(Event.REPLY_ERROR, StreamError(code, message, details))

    async def await_reply(self) -> Any:
        """Client: the server's reply; `trio.EndOfChannel` if a bidi server ended with END."""
        return await self._decode(await self._call(Event.AWAIT_REPLY), "reply")

    async def close(self) -> None:
        """Close both sides (idempotent): END the send side, cancel the peer if it has not ended.

        Runs to completion even if the caller is cancelled meanwhile.
        """
        await self._terminal(Event.CLOSE, None)

    async def abort(
        self, code: StatusCode, message: str = "", details: Mapping[str, Any] | None = None
    ) -> None:
        """Close both sides with an error: every waiter here and at the peer gets it."""
        await self._terminal(Event.ABORT, StreamError(code, message, details))

    async def _terminal(self, event: Event, arg: object) -> None:
        if self._terminal_posted and not self._done:
            await self._finished.wait()  # the first close or abort settles the stream
            return
        # Posted before any checkpoint and never withdrawn (it uses the one reserved
        # mailbox slot), so a close or abort happens even if its caller is cancelled.
        self._terminal_posted = True
        await self._post(_Call(event, arg))

    def info(self) -> StreamInfo:
        """A snapshot of the stream's state and counters."""
        m = self._machine
        waiting = self.is_waiting
        waiters = sum(map(waiting, m.recv_waiters)) + sum(map(waiting, m.reply_waiters))
        waiters += sum(1 for caller, _ in m.blocked_sends if waiting(caller))
        return StreamInfo(
            id=self.id,
            role=self.role,
            mode=self.mode,
            encoding=self.encoding,
            state=m.state,
            send_state=m.send,
            recv_state=m.recv,
            reply_state=m.reply,
            chunks_sent=m.chunks_sent,
            bytes_sent=m.bytes_sent,
            chunks_received=m.chunks_received,
            bytes_received=m.bytes_received,
            send_credit=m.send_credit,
            recv_credit=m.window - m.recv_outstanding,
            buffered_chunks=len(m.buffer),
            buffered_bytes=m.buffered_bytes,
            waiters=waiters,
            finished=m.finished,
        )


_OVERRUN: Final = StreamError(
    StatusCode.RESOURCE_EXHAUSTED, "peer protocol violation: deliveries beyond the granted credit"
)
