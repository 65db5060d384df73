"""The per-stream state machine: applies `table.TRANSITIONS` to one stream, sans-IO.

`StreamMachine.step(event, arg, caller)` checks the mode/role rules and the
table, raises `StreamStateError` (changing nothing) for an illegal owner call,
else moves the two direction states and carries out the row's effects through
an `Outbox`: deliveries to the peer, and answers to parked callers. Callers
are opaque tokens, so the machine never touches trio; the actor supplies them.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable
from typing import Final, Protocol

import attrs
from streamlet.codec.modes import Mode
from streamlet.codec.status import StatusCode, StreamError

from .credit import DEFAULT_WINDOW, MIN_CHUNK_CHARGE, chunk_charge
from .effects import EFFECTS, EffectFn
from .errors import StreamStateError
from .table import (
    CALL_RULES,
    OWNER_CALLS,
    REPLY_MODES,
    SINGLE_REQUEST_MODES,
    TRANSITIONS,
    Event,
    Key,
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

__all__ = [
    "DEFAULT_WINDOW",
    "MIN_CHUNK_CHARGE",
    "Outbox",
    "StreamMachine",
    "Waiter",
    "chunk_charge",
]


@attrs.frozen
class SideRules:
    """The mode/role rules for one side of a stream, looked up once instead of per message."""

    calls: frozenset[Event]  # the owner calls this side may make at all
    single_request: bool  # a unary or server_stream client: its one send ends the send side
    owes_reply: bool  # a unary or client_stream server: it must end with a reply
    peer_sends_chunks: bool
    peer_single_request: bool  # the peer is a client that sends exactly one chunk
    peer_may_end: bool
    peer_may_reply: bool

    @classmethod
    def of(cls, mode: Mode, role: Role) -> SideRules:
        """The rules for `role` in `mode`, from the table's `CALL_RULES`."""
        peer = Role.SERVER if role is Role.CLIENT else Role.CLIENT
        return cls(
            calls=CALL_RULES[(mode, role)],
            single_request=role is Role.CLIENT and mode in SINGLE_REQUEST_MODES,
            owes_reply=role is Role.SERVER and mode in REPLY_MODES,
            peer_sends_chunks=may_send_chunks(mode, peer),
            peer_single_request=peer is Role.CLIENT and mode in SINGLE_REQUEST_MODES,
            peer_may_end=may_end(mode, peer),
            peer_may_reply=may_reply(mode, peer),
        )


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
    owner_ended: bool = False  # the owner closed, aborted or failed the call itself
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
    rules: SideRules = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        if self.window < MIN_CHUNK_CHARGE:
            raise ValueError(f"window must be at least {MIN_CHUNK_CHARGE} bytes")
        if not 0 < self.max_chunk_size <= self.window:
            raise ValueError("max_chunk_size must be > 0 and not above the window")
        self.rules = SideRules.of(self.mode, self.role)

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
        row = _COMPILED.get((self.send, self.recv, event))
        if row is None:
            raise StreamStateError(f"{event.value} on {self.describe()}: not allowed here")
        self.send, self.recv, effects = row
        if event in _ENDING:
            self.owner_ended = True
        for effect in effects:
            effect(self, event, arg, caller)

    def _check_call(self, event: Event, arg: object) -> tuple[Event, object]:
        rules = self.rules
        if event not in rules.calls:
            raise StreamStateError(
                f"{event.value} on {self.describe()}: a {self.mode.value} "
                f"{self.role.value} may not {event.value}"
            )
        if (
            event is Event.CLOSE_SEND
            and rules.single_request
            and self.chunks_sent == 0
            and not self.blocked_sends
        ):
            raise StreamStateError(
                f"close_send on {self.describe()}: a {self.mode.value} client sends exactly "
                "one request chunk (its send ends the send side), and has sent none"
            )
        if self.send is SendState.RESET and not self.owner_ended and event in _SENDING:
            # The peer (or the connection) failed the call: an outcome, reported as such.
            assert self.error is not None
            raise copy.copy(self.error)
        if event is Event.SEND and self.send is not SendState.OPEN:
            reason = (
                "the send side is closed"
                if self.send is SendState.ENDED
                else "the stream was reset"
            )
            error = StreamStateError(f"send on {self.describe()}: {reason}")
            raise error from self.error
        if event is Event.CLOSE and rules.owes_reply and self.send is SendState.OPEN:
            # A server that owes a reply cannot end with END: closing it cancels the call.
            return Event.ABORT, StreamError(
                StatusCode.CANCELLED, "the server closed without a reply"
            )
        return event, arg

    def _check_delivery(self, event: Event, arg: object) -> tuple[Event, object]:
        """Receive-side guards: a delivery the peer's mode forbids resets the stream."""
        rules = self.rules
        peer = Role.SERVER if self.role is Role.CLIENT else Role.CLIENT
        problem: StreamError | None = None
        if event is Event.DELIVER_CHUNK:
            assert isinstance(arg, bytes)
            if not rules.peer_sends_chunks:
                problem = _violation(f"a {self.mode.value} {peer.value} may not send chunks")
            elif rules.peer_single_request and self.chunks_received:
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
        elif event is Event.DELIVER_END and not rules.peer_may_end:
            problem = _violation(f"a {self.mode.value} {peer.value} must reply, not END")
        elif event is Event.DELIVER_REPLY and not rules.peer_may_reply:
            problem = _violation(f"a {self.mode.value} {peer.value} may not reply")
        if problem is None:
            return event, arg
        return Event.PEER_VIOLATION, problem


# The table with each effect resolved to its function once, at import: the same rows.
_COMPILED: Final[dict[Key, tuple[SendState, RecvState, tuple[EffectFn, ...]]]] = {
    key: (row.send, row.recv, tuple(EFFECTS[effect] for effect in row.effects))
    for key, row in TRANSITIONS.items()
}


_SENDING: Final = frozenset({Event.SEND, Event.CLOSE_SEND})
_ENDING: Final = frozenset({Event.CLOSE, Event.ABORT, Event.REPLY_ERROR})


def _violation(what: str) -> StreamError:
    return StreamError(StatusCode.INTERNAL, f"peer protocol violation: {what}")
