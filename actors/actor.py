"""The stream actor: one trio task per stream, and the owner's and the peer's handle on it.

`Stream` is both the owner's handle (send, recv, close, ...) and the peer's
inbound side (deliver_*, grant_credit). Every owner call and every delivery is
a message in the stream's `Mailbox`, applied to the `StreamMachine` one at a
time, in order: at once in the posting task when the stream is idle (the
usual case, and the fast one), else by the actor task (`Stream.run`) when it
wakes. The machine answers parked callers through `trio.lowlevel.reschedule`
(no Event per call). The actor task owns the stream's lifetime: if the
owner's scope is cancelled or raises before the stream is closed, it aborts
the stream with CANCELLED. Once the owner closed or aborted the stream the
task ends, and later calls and deliveries are applied in place.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, ClassVar, Final, NoReturn

import attrs
import outcome
import trio
from streamlet.codec.chunks import Encoding, decode_chunk, encode_chunk
from streamlet.codec.errors import ProtocolError
from streamlet.codec.modes import Mode
from streamlet.codec.status import StatusCode, StreamError

from .credit import DEFAULT_WINDOW, MIN_CHUNK_CHARGE
from .errors import ChunkTooLargeError, StreamStateError
from .link import NullLink, PeerLink
from .machine import StreamMachine, Waiter
from .mailbox import Call, Grant, Mailbox, Message
from .table import (
    ANSWERED_BY_EFFECTS,
    Event,
    RecvState,
    ReplyState,
    Role,
    SendState,
    StreamState,
)

OWNER_SLOTS: Final = 64  # owner calls queued at once (before the actor runs); more wait
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
        self._mailbox = Mailbox(self._handle, capacity)
        self._peer: PeerLink = NullLink()
        self._peer_max_chunk: int | None = None
        self._pending_grant: Grant | None = None
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

    # Whether a message posted to an idle stream is applied at once in the posting
    # task. Tests turn it off to send every message through the actor task instead.
    _apply_inline: ClassVar[bool] = True

    async def run(self, *, task_status: trio.TaskStatus[Stream] = trio.TASK_STATUS_IGNORED) -> None:
        """The actor: apply what the mailbox holds until the owner closes or aborts the stream.

        Start it in the owner's nursery (`await nursery.start(stream.run)`); if
        that scope is cancelled or raises first, the stream aborts with
        CANCELLED and the peer hears it. Messages posted while it waits are
        applied at once by their posting task; it wakes for the rest.
        """
        if self._running or self._done:
            raise StreamStateError(f"run on {self._machine.describe()}: already started")
        self._running = True
        task_status.started(self)
        mailbox = self._mailbox
        mailbox.inline = self._apply_inline
        try:
            mailbox.apply_all()  # what was posted before the actor started
            while not self._machine.finished:
                await mailbox.wait()
                mailbox.apply_all()
        finally:
            self._stop()

    def _stop(self) -> None:
        """End the actor: apply what is queued, abort if the owner did not finish, go inline."""
        mailbox = self._mailbox
        mailbox.inline = True  # from now on every message is applied where it is posted
        mailbox.apply_all()
        if not self._machine.finished:
            mailbox.post((Event.OWNER_DEATH, None))
        if self._machine.has_waiters():
            raise AssertionError(f"{self!r} finished with callers still parked")
        self._done = True
        self._slots.unpark_all()
        self._finished.set()

    def _handle(self, message: Message) -> None:
        """Apply one message from the mailbox to the machine."""
        if type(message) is Call:
            self._owner_pending -= 1
            if self._slots:
                self._slots.unpark()
            if not message.withdrawn:
                self._apply_call(message)
        elif type(message) is Grant:
            self._pending_grant = None
            self._machine.step(Event.GRANT_CREDIT, message.increment)
        else:
            assert isinstance(message, tuple)
            event, arg = message
            if event is not Event.PEER_VIOLATION or self._machine.recv is RecvState.OPEN:
                self._machine.step(event, arg)

    def _apply_call(self, call: Call) -> None:
        try:
            self._machine.step(call.event, call.arg, call)
        except (StreamStateError, StreamError) as exc:
            call.finish(outcome.Error(exc))
        else:
            if call.event not in ANSWERED_BY_EFFECTS:
                call.finish_value(None)
            if self._machine.finished:
                self._mailbox.wake_actor()  # a close or abort: the actor task ends

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
        return isinstance(caller, Call) and not caller.withdrawn

    def resolve(self, caller: Waiter, value: bytes | None) -> bool:
        assert isinstance(caller, Call)
        return caller.finish_value(value)

    def end(self, caller: Waiter) -> bool:
        assert isinstance(caller, Call)
        return caller.finish(outcome.Error(trio.EndOfChannel()))

    def interrupt(self, caller: Waiter) -> bool:
        assert isinstance(caller, Call)
        error = trio.ClosedResourceError(f"the send side of stream {self.id} was closed meanwhile")
        return caller.finish(outcome.Error(error))

    def fail(self, caller: Waiter, error: BaseException) -> bool:
        assert isinstance(caller, Call)
        return caller.finish(outcome.Error(copy.copy(error)))  # a fresh traceback per waiter

    # -- the peer's inbound side ---------------------------------------------------------

    def deliver_chunk(self, payload: bytes | bytearray | memoryview) -> None:
        """The peer sent a chunk (its encoded bytes); it must fit the credit this side granted."""
        self._mailbox.deliver(
            (Event.DELIVER_CHUNK, payload if type(payload) is bytes else bytes(payload))
        )

    def deliver_end(self) -> None:
        """The peer half-closed: `recv()` ends after the buffered chunks."""
        self._mailbox.deliver((Event.DELIVER_END, None))

    def deliver_error(self, error: StreamError) -> None:
        """The peer failed or cancelled the stream: every waiter here gets `error`."""
        self._mailbox.deliver((Event.DELIVER_ERROR, error))

    def deliver_reply(self, payload: bytes | bytearray | memoryview) -> None:
        """The server's terminal reply (its encoded bytes)."""
        self._mailbox.deliver((Event.DELIVER_REPLY, bytes(payload)))

    def grant_credit(self, increment: int) -> None:
        """The peer took `increment` more bytes: this side may send that much more."""
        if increment <= 0:
            raise ValueError(f"a credit increment must be > 0, got {increment}")
        grant = self._pending_grant
        if grant is not None:
            grant.increment += increment  # not applied yet: it still sits in the mailbox
        else:
            self._pending_grant = grant = Grant(increment)
            self._mailbox.post(grant)  # at most one at a time, so never refused as an overrun

    # -- the owner's calls ---------------------------------------------------------------

    async def _call(self, event: Event, arg: object = None, *, withdrawable: bool = True) -> Any:
        """Post an owner call and return its answer, at once if it was applied inline.

        A call is a checkpoint, as a trio memory channel's `send` is: cancelled
        before it is posted it raises `Cancelled` and never happens; answered at
        once, it still ends with a cancel-shielded checkpoint (too late to
        cancel: the call has happened). A call that waits (for a chunk, credit
        or the reply) parks, and cancelling it withdraws it unanswered. Close
        and abort (`withdrawable=False`) are posted before any checkpoint and
        always happen; as with trio's `aclose`, a cancelled caller then still
        gets `Cancelled`.
        """
        if withdrawable:
            await trio.lowlevel.checkpoint_if_cancelled()
            while not self._done and self._owner_pending >= OWNER_SLOTS:
                await self._slots.park()
        call = Call(event, arg)
        self._owner_pending += 1
        self._mailbox.post(call)
        if call.answered:
            if withdrawable:
                await trio.lowlevel.cancel_shielded_checkpoint()
            else:
                await trio.lowlevel.checkpoint()  # as trio's aclose: done, yet Cancelled if due
            return call.pick_up()
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
        payload = await self._call(Event.RECV)
        try:
            return decode_chunk(self.encoding, payload)
        except ProtocolError as exc:
            await self._undecodable(exc, "chunk")

    async def _undecodable(self, exc: ProtocolError, what: str) -> NoReturn:
        """A payload from the peer that does not decode: reset the stream with INTERNAL, raise."""
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
        payload = await self._call(Event.AWAIT_REPLY)
        try:
            return decode_chunk(self.encoding, payload)
        except ProtocolError as exc:
            await self._undecodable(exc, "reply")

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
        await self._call(event, arg, withdrawable=False)

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
