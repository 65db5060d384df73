"""The per-stream state machine: applies `table.TRANSITIONS` to one stream, sans-IO.

`StreamMachine.step(event, arg, caller)` checks the mode/role rules and the
table, raises `StreamStateError` (changing nothing) for an illegal owner call,
else moves the two direction states and carries out the row's effects through
an `Outbox`: deliveries to the peer, and answers to parked callers. Callers
are opaque tokens, so the machine never touches trio; the actor supplies them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Final, Protocol

import attrs
from streamlet.codec.modes import Mode
from streamlet.codec.status import StatusCode, StreamError

from .errors import StreamStateError
from .table import (
    CALL_RULES,
    OWNER_CALLS,
    REPLY_MODES,
    SINGLE_REQUEST_MODES,
    TRANSITIONS,
    Effect,
    Event,
    RecvState,
    ReplyState,
    Role,
    SendState,
    StreamState,
    may_end,
    may_reply,
    may_send_chunks,
    stream_state,
)

# The least credit a chunk costs: one frame header's worth. Without a floor a
# flood of empty chunks would cost nothing; with it a window of W bytes holds
# at most W // 16 chunks.
MIN_CHUNK_CHARGE: Final = 16
DEFAULT_WINDOW: Final = 1 << 20


def chunk_charge(size: int) -> int:
    """The credit a chunk of `size` encoded bytes consumes."""
    return size if size > MIN_CHUNK_CHARGE else MIN_CHUNK_CHARGE


Waiter = object  # an opaque token for a parked owner call, supplied by the actor


class Outbox(Protocol):
    """Where the machine's outward effects go: the peer link, and the owner's parked calls.

    The answer methods return False when the caller is no longer waiting (it
    was cancelled), so the machine can offer the value to the next one.
    """

    def emit_chunk(self, payload: bytes) -> None: ...
    def emit_end(self) -> None: ...
    def emit_reply(self, payload: bytes) -> None: ...
    def emit_error(self, error: StreamError) -> None: ...
    def emit_credit(self, increment: int) -> None: ...
    def is_waiting(self, caller: Waiter) -> bool: ...
    def resolve(self, caller: Waiter, value: bytes | None) -> bool: ...
    def end(self, caller: Waiter) -> bool: ...
    def interrupt(self, caller: Waiter) -> bool: ...
    def fail(self, caller: Waiter, error: BaseException) -> bool: ...


def _owner_death_error() -> StreamError:
    return StreamError(StatusCode.CANCELLED, "the stream's owner was cancelled or raised")


@attrs.define(eq=False)
class StreamMachine:
    """One stream's whole state: the two directions, the reply slot, credit, buffer, waiters."""

    id: int
    role: Role
    mode: Mode
    outbox: Outbox
    window: int = DEFAULT_WINDOW  # the receive window this side grants the peer
    max_chunk_size: int = DEFAULT_WINDOW // 2  # the largest chunk this side accepts
    send: SendState = SendState.OPEN
    recv: RecvState = RecvState.OPEN
    reply: ReplyState = ReplyState.NONE
    reply_payload: bytes | None = None
    error: StreamError | None = None
    finished: bool = False
    send_credit: int = 0  # bytes the peer still lets this side send
    recv_outstanding: int = 0  # bytes the peer used that this side has not returned yet
    recv_consumed: int = 0  # of those, bytes the owner took (returned in batches)
    buffer: deque[tuple[bytes, int]] = attrs.field(factory=deque)
    buffered_bytes: int = 0
    recv_waiters: deque[Waiter] = attrs.field(factory=deque)
    reply_waiters: deque[Waiter] = attrs.field(factory=deque)
    blocked_sends: deque[tuple[Waiter, bytes]] = attrs.field(factory=deque)
    chunks_sent: int = 0
    bytes_sent: int = 0
    chunks_received: int = 0
    bytes_received: int = 0
    on_error: Callable[[StreamError], None] | None = None  # told once, when the error is stored

    def __attrs_post_init__(self) -> None:
        if self.window < MIN_CHUNK_CHARGE:
            raise ValueError(f"window must be at least {MIN_CHUNK_CHARGE} bytes")
        if not 0 < self.max_chunk_size <= self.window:
            raise ValueError("max_chunk_size must be > 0 and not above the window")

    @property
    def state(self) -> StreamState:
        """The overall state derived from the two directions."""
        return stream_state(self.send, self.recv)

    def describe(self) -> str:
        """`stream 3 (client bidi) in state open (send open, recv open)`, for error messages."""
        return (
            f"stream {self.id} ({self.role.value} {self.mode.value}) in state "
            f"{self.state.value} (send {self.send.value}, recv {self.recv.value})"
        )

    def has_waiters(self) -> bool:
        """Whether any caller is still parked here (none may be once the stream is finished)."""
        is_waiting = self.outbox.is_waiting
        return (
            any(map(is_waiting, self.recv_waiters))
            or any(map(is_waiting, self.reply_waiters))
            or any(is_waiting(w) for w, _ in self.blocked_sends)
        )

    # -- the one entry point -------------------------------------------------------------

    def step(self, event: Event, arg: object = None, caller: Waiter | None = None) -> None:
        """Apply one event: raise `StreamStateError` for an illegal call, else transition."""
        if event in OWNER_CALLS:
            event, arg = self._check_call(event, arg)
        elif event is not Event.GRANT_CREDIT and self.recv is RecvState.OPEN:
            event, arg = self._check_delivery(event, arg)
        row = TRANSITIONS.get((self.send, self.recv, event))
        if row is None:
            raise StreamStateError(f"{event.value} on {self.describe()}: not allowed here")
        self.send, self.recv = row.send, row.recv
        for effect in row.effects:
            _EFFECTS[effect](self, event, arg, caller)

    def _check_call(self, event: Event, arg: object) -> tuple[Event, object]:
        if event not in CALL_RULES[(self.mode, self.role)]:
            raise StreamStateError(
                f"{event.value} on {self.describe()}: a {self.mode.value} "
                f"{self.role.value} may not {event.value}"
            )
        single = self.role is Role.CLIENT and self.mode in SINGLE_REQUEST_MODES
        if (
            event is Event.CLOSE_SEND
            and single
            and self.chunks_sent == 0
            and not self.blocked_sends
        ):
            raise StreamStateError(
                f"close_send on {self.describe()}: a {self.mode.value} client sends exactly "
                "one request chunk (its send ends the send side), and has sent none"
            )
        if event is Event.SEND and self.send is not SendState.OPEN:
            reason = (
                "the send side is closed"
                if self.send is SendState.ENDED
                else "the stream was reset"
            )
            error = StreamStateError(f"send on {self.describe()}: {reason}")
            raise error from self.error
        if (
            event is Event.CLOSE
            and self.role is Role.SERVER
            and self.mode in REPLY_MODES
            and self.send is SendState.OPEN
        ):
            # A server that owes a reply cannot end with END: closing it cancels the call.
            return Event.ABORT, StreamError(
                StatusCode.CANCELLED, "the server closed without a reply"
            )
        return event, arg

    def _check_delivery(self, event: Event, arg: object) -> tuple[Event, object]:
        """Receive-side guards: a delivery the peer's mode forbids resets the stream."""
        peer = Role.SERVER if self.role is Role.CLIENT else Role.CLIENT
        problem: StreamError | None = None
        if event is Event.DELIVER_CHUNK:
            assert isinstance(arg, bytes)
            if not may_send_chunks(self.mode, peer):
                problem = _violation(f"a {self.mode.value} {peer.value} may not send chunks")
            elif peer is Role.CLIENT and self.mode in SINGLE_REQUEST_MODES and self.chunks_received:
                problem = _violation(f"a {self.mode.value} client sends exactly one chunk")
            elif len(arg) > self.max_chunk_size:
                problem = StreamError(
                    StatusCode.RESOURCE_EXHAUSTED,
                    f"peer sent a {len(arg)}-byte chunk, "
                    f"above the max chunk size {self.max_chunk_size}",
                )
            elif self.recv_outstanding + chunk_charge(len(arg)) > self.window:
                problem = StreamError(
                    StatusCode.RESOURCE_EXHAUSTED,
                    f"peer overran its credit: {self.recv_outstanding} of {self.window} bytes "
                    f"in use, chunk costs {chunk_charge(len(arg))}",
                )
        elif event is Event.DELIVER_END and not may_end(self.mode, peer):
            problem = _violation(f"a {self.mode.value} {peer.value} must reply, not END")
        elif event is Event.DELIVER_REPLY and not may_reply(self.mode, peer):
            problem = _violation(f"a {self.mode.value} {peer.value} may not reply")
        if problem is None:
            return event, arg
        return Event.PEER_VIOLATION, problem

    # -- helpers for the effects -----------------------------------------------------------

    def error_for(self, event: Event, arg: object) -> tuple[StreamError, StreamError]:
        """The (stored here, sent to the peer) errors a terminal event carries."""
        if isinstance(arg, StreamError):
            return arg, arg
        if event is Event.CLOSE:
            return (
                StreamError(StatusCode.CANCELLED, "the stream was closed before the peer's end"),
                StreamError(StatusCode.CANCELLED, "the peer closed the stream"),
            )
        death = _owner_death_error()
        return death, death

    def _store_error(self, error: StreamError) -> None:
        if self.error is None:
            self.error = error
            if self.on_error is not None:
                self.on_error(error)

    def _send_now(self, payload: bytes) -> None:
        self.send_credit -= chunk_charge(len(payload))
        self.chunks_sent += 1
        self.bytes_sent += len(payload)
        self.outbox.emit_chunk(payload)
        if self.role is Role.CLIENT and self.mode in SINGLE_REQUEST_MODES:
            self.step(Event.CLOSE_SEND)  # the one request chunk also ends the send side

    def _take(self, caller: Waiter) -> None:
        payload, charge = self.buffer.popleft()
        self.buffered_bytes -= charge
        self.outbox.resolve(caller, payload)
        self._consumed(charge)

    def _consumed(self, charge: int) -> None:
        """Count a chunk the owner took; return credit in batches.

        Returning once half the window is consumed keeps CREDIT messages rare.
        The second condition prevents a deadlock: with the buffer empty, a
        sender still blocked must have consumed > window - its chunk, so all
        consumed credit goes back whenever the next chunk might not fit.
        """
        consumed = self.recv_consumed + charge
        if consumed * 2 >= self.window or (
            not self.buffer and consumed + chunk_charge(self.max_chunk_size) > self.window
        ):
            self.recv_consumed = 0
            self.recv_outstanding -= consumed
            self.outbox.emit_credit(consumed)
        else:
            self.recv_consumed = consumed

    def _park(self, waiters: deque[Waiter], caller: Waiter | None) -> None:
        is_waiting = self.outbox.is_waiting
        while waiters and not is_waiting(waiters[0]):
            waiters.popleft()
        waiters.append(caller)


def _violation(what: str) -> StreamError:
    return StreamError(StatusCode.INTERNAL, f"peer protocol violation: {what}")


# -- the effects, one function each --------------------------------------------------------

EffectFn = Callable[[StreamMachine, Event, object, "Waiter | None"], None]


def _emit_chunk(m: StreamMachine, event: Event, arg: object, caller: Waiter | None) -> None:
    assert isinstance(arg, bytes)
    if m.blocked_sends or chunk_charge(len(arg)) > m.send_credit:
        m.blocked_sends.append((caller, arg))  # sends leave in order, once credit allows
        return
    m.outbox.resolve(caller, None)
    m._send_now(arg)


def _emit_end(m: StreamMachine, event: Event, arg: object, caller: Waiter | None) -> None:
    m.outbox.emit_end()


def _emit_reply(m: StreamMachine, event: Event, arg: object, caller: Waiter | None) -> None:
    assert isinstance(arg, bytes)
    m.outbox.emit_reply(arg)


def _emit_error(m: StreamMachine, event: Event, arg: object, caller: Waiter | None) -> None:
    m.outbox.emit_error(m.error_for(event, arg)[1])


def _interrupt_sends(m: StreamMachine, event: Event, arg: object, caller: Waiter | None) -> None:
    while m.blocked_sends:
        m.outbox.interrupt(m.blocked_sends.popleft()[0])


def _take_or_wait(m: StreamMachine, event: Event, arg: object, caller: Waiter | None) -> None:
    if m.buffer:
        m._take(caller)
    else:
        m._park(m.recv_waiters, caller)


def _take_or_end(m: StreamMachine, event: Event, arg: object, caller: Waiter | None) -> None:
    if m.buffer:
        m._take(caller)
    else:
        m.outbox.end(caller)


def _raise_error(m: StreamMachine, event: Event, arg: object, caller: Waiter | None) -> None:
    assert m.error is not None
    m.outbox.fail(caller, m.error)


def _wait_reply(m: StreamMachine, event: Event, arg: object, caller: Waiter | None) -> None:
    m._park(m.reply_waiters, caller)


def _return_reply(m: StreamMachine, event: Event, arg: object, caller: Waiter | None) -> None:
    if m.reply is ReplyState.VALUE:
        m.outbox.resolve(caller, m.reply_payload)
    else:
        m.outbox.end(caller)


def _buffer_chunk(m: StreamMachine, event: Event, arg: object, caller: Waiter | None) -> None:
    assert isinstance(arg, bytes)
    charge = chunk_charge(len(arg))
    m.recv_outstanding += charge
    m.chunks_received += 1
    m.bytes_received += len(arg)
    resolve = m.outbox.resolve
    while m.recv_waiters:  # a parked receiver takes it straight away
        if resolve(m.recv_waiters.popleft(), arg):
            m._consumed(charge)
            return
    m.buffer.append((arg, charge))
    m.buffered_bytes += charge


def _drop_chunk(m: StreamMachine, event: Event, arg: object, caller: Waiter | None) -> None:
    assert isinstance(arg, bytes)
    m.outbox.emit_credit(chunk_charge(len(arg)))


def _end_recv(m: StreamMachine, event: Event, arg: object, caller: Waiter | None) -> None:
    while m.recv_waiters:
        m.outbox.end(m.recv_waiters.popleft())
    while m.reply_waiters:
        _return_reply(m, event, arg, m.reply_waiters.popleft())


def _store_reply(m: StreamMachine, event: Event, arg: object, caller: Waiter | None) -> None:
    assert isinstance(arg, bytes)
    m.reply = ReplyState.VALUE
    m.reply_payload = arg


def _store_reply_error(m: StreamMachine, event: Event, arg: object, caller: Waiter | None) -> None:
    m.reply = ReplyState.ERROR


def _reset_send(m: StreamMachine, event: Event, arg: object, caller: Waiter | None) -> None:
    m._store_error(m.error_for(event, arg)[0])
    assert m.error is not None
    while m.blocked_sends:
        m.outbox.fail(m.blocked_sends.popleft()[0], m.error)


def _reset_recv(m: StreamMachine, event: Event, arg: object, caller: Waiter | None) -> None:
    m._store_error(m.error_for(event, arg)[0])
    assert m.error is not None
    if m.reply is ReplyState.NONE and m.role is Role.CLIENT:
        m.reply = ReplyState.ERROR
    while m.recv_waiters:
        m.outbox.fail(m.recv_waiters.popleft(), m.error)
    while m.reply_waiters:
        m.outbox.fail(m.reply_waiters.popleft(), m.error)
    returned = m.buffered_bytes + m.recv_consumed  # dropped bytes still return credit
    m.buffer.clear()
    m.buffered_bytes = m.recv_consumed = 0
    m.recv_outstanding -= returned
    if returned:
        m.outbox.emit_credit(returned)


def _add_credit(m: StreamMachine, event: Event, arg: object, caller: Waiter | None) -> None:
    assert isinstance(arg, int)
    m.send_credit += arg
    blocked = m.blocked_sends
    while blocked and m.send is SendState.OPEN:
        waiter, payload = blocked[0]
        if not m.outbox.is_waiting(waiter):
            blocked.popleft()  # its sender was cancelled: the chunk never leaves
            continue
        if chunk_charge(len(payload)) > m.send_credit:
            return
        blocked.popleft()
        m.outbox.resolve(waiter, None)
        m._send_now(payload)


def _finish(m: StreamMachine, event: Event, arg: object, caller: Waiter | None) -> None:
    m.finished = True


_EFFECTS: Final[dict[Effect, EffectFn]] = {
    Effect.EMIT_CHUNK: _emit_chunk,
    Effect.EMIT_END: _emit_end,
    Effect.EMIT_REPLY: _emit_reply,
    Effect.EMIT_ERROR: _emit_error,
    Effect.INTERRUPT_SENDS: _interrupt_sends,
    Effect.TAKE_OR_WAIT: _take_or_wait,
    Effect.TAKE_OR_END: _take_or_end,
    Effect.RAISE_ERROR: _raise_error,
    Effect.WAIT_REPLY: _wait_reply,
    Effect.RETURN_REPLY: _return_reply,
    Effect.BUFFER_CHUNK: _buffer_chunk,
    Effect.DROP_CHUNK: _drop_chunk,
    Effect.END_RECV: _end_recv,
    Effect.STORE_REPLY: _store_reply,
    Effect.STORE_REPLY_ERROR: _store_reply_error,
    Effect.RESET_SEND: _reset_send,
    Effect.RESET_RECV: _reset_recv,
    Effect.ADD_CREDIT: _add_credit,
    Effect.FINISH: _finish,
}
