"""The stream state machine as data: one transition table and the mode/role rules.

Each direction of a stream is its own small machine (send: open, ended, reset;
receive: open, ended, reset) and the stream's state is the pair. `TRANSITIONS`
maps `(send, recv, event)` to `(send', recv', effects)`; anything not in it is
illegal. `CALL_RULES` says which owner calls each mode and role may make at all.
`specs/stream.md` holds the same two tables; `test_spec_table.py` pins them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final

import attrs
from streamlet.codec.modes import Mode


class _Enum(enum.Enum):
    """An enum hashed by identity, which its singleton members allow.

    The machine looks its states and events up in the tables on every message,
    and `enum.Enum.__hash__` is Python code hashing the member's name: this
    keeps those lookups in C.
    """

    __hash__ = object.__hash__


class Role(_Enum):
    """Which end of a call a stream is: the client opened it, the server serves it."""

    CLIENT = "client"
    SERVER = "server"


class SendState(_Enum):
    """This side's sending direction."""

    OPEN = "open"
    ENDED = "ended"  # END or a reply went out
    RESET = "reset"  # an error ended it


class RecvState(_Enum):
    """This side's receiving direction."""

    OPEN = "open"
    ENDED = "ended"  # the peer's END or reply came in
    RESET = "reset"  # an error ended it


class ReplyState(_Enum):
    """The reply slot: what the terminal reply of the call was, once known."""

    NONE = "none"
    VALUE = "value"
    ERROR = "error"


class StreamState(_Enum):
    """The stream's overall state, derived from its two directions (RFC 9113 §5.1 names)."""

    OPEN = "open"
    HALF_CLOSED_LOCAL = "half_closed_local"
    HALF_CLOSED_REMOTE = "half_closed_remote"
    CLOSED = "closed"
    RESET = "reset"


def stream_state(send: SendState, recv: RecvState) -> StreamState:
    """Derive the overall state: open while a direction is open, else closed or reset."""
    if send is SendState.OPEN:
        return StreamState.OPEN if recv is RecvState.OPEN else StreamState.HALF_CLOSED_REMOTE
    if recv is RecvState.OPEN:
        return StreamState.HALF_CLOSED_LOCAL
    if send is SendState.RESET or recv is RecvState.RESET:
        return StreamState.RESET
    return StreamState.CLOSED


class Event(_Enum):
    """Inputs to the machine: the owner's calls, the peer's deliveries, and owner death."""

    SEND = "send"
    RECV = "recv"
    CLOSE_SEND = "close_send"
    CLOSE = "close"
    ABORT = "abort"
    REPLY = "reply"
    REPLY_ERROR = "reply_error"
    AWAIT_REPLY = "await_reply"
    DELIVER_CHUNK = "deliver_chunk"
    DELIVER_END = "deliver_end"
    DELIVER_ERROR = "deliver_error"
    DELIVER_REPLY = "deliver_reply"
    GRANT_CREDIT = "grant_credit"
    PEER_VIOLATION = "peer_violation"  # a delivery broke the protocol (e.g. overran credit)
    OWNER_DEATH = "owner_death"


OWNER_CALLS: Final = frozenset(
    {
        Event.SEND,
        Event.RECV,
        Event.CLOSE_SEND,
        Event.CLOSE,
        Event.ABORT,
        Event.REPLY,
        Event.REPLY_ERROR,
        Event.AWAIT_REPLY,
    }
)


# Owner calls whose caller the effects answer (with a value, END, an error, or by parking
# it); the actor answers every other owner call with None once its step is done.
ANSWERED_BY_EFFECTS: Final = frozenset({Event.SEND, Event.RECV, Event.AWAIT_REPLY})


class Effect(_Enum):
    """What a transition does besides changing the two direction states."""

    EMIT_CHUNK = "emit_chunk"  # deliver the chunk to the peer once credit allows, else park
    EMIT_END = "emit_end"  # deliver END to the peer
    EMIT_REPLY = "emit_reply"  # deliver the reply to the peer
    EMIT_ERROR = "emit_error"  # deliver this transition's error to the peer
    INTERRUPT_SENDS = "interrupt_sends"  # senders parked for credit get ClosedResourceError
    TAKE_OR_WAIT = "take_or_wait"  # the caller gets the oldest buffered chunk, else parks
    TAKE_OR_END = "take_or_end"  # the caller gets the oldest buffered chunk, else END
    TAKE_OR_RAISE = "take_or_raise"  # the caller gets the oldest buffered chunk, else the error
    RAISE_ERROR = "raise_error"  # the caller gets the stored error
    WAIT_REPLY = "wait_reply"  # the caller parks until the reply, END or an error
    RETURN_REPLY = "return_reply"  # the caller gets the stored reply, else END
    BUFFER_CHUNK = "buffer_chunk"  # hand the chunk to a parked receiver, else buffer it
    DROP_CHUNK = "drop_chunk"  # drop a late chunk, returning its credit at once
    END_RECV = "end_recv"  # parked receivers get END, parked reply waiters the reply or END
    STORE_REPLY = "store_reply"  # fill the reply slot with the value
    STORE_REPLY_ERROR = "store_reply_error"  # fill the reply slot with the error
    RESET_SEND = "reset_send"  # store the error; senders parked for credit get it
    RESET_RECV = "reset_recv"  # store the error; drop the buffer; parked waiters get it
    FAIL_RECV = "fail_recv"  # store the peer's error; keep the buffer; parked waiters get it
    ADD_CREDIT = "add_credit"  # add the increment; release parked senders in order
    FINISH = "finish"  # the owner is done with the stream: the actor may stop


@attrs.frozen
class Transition:
    """One row's right-hand side: the next direction states and the effects, in order."""

    send: SendState
    recv: RecvState
    effects: tuple[Effect, ...]


Key = tuple[SendState, RecvState, Event]

O, E, X = SendState.OPEN, SendState.ENDED, SendState.RESET  # noqa: E741 (the table's letters)
o, e, x = RecvState.OPEN, RecvState.ENDED, RecvState.RESET
_ = Effect
ev = Event

# (send, recv, event) -> (send', recv', effects). The spec's diagram is in specs/stream.md.
_ROWS: tuple[tuple[SendState, RecvState, Event, SendState, RecvState, tuple[Effect, ...]], ...] = (
    (O, o, ev.SEND, O, o, (_.EMIT_CHUNK,)),
    (O, e, ev.SEND, O, e, (_.EMIT_CHUNK,)),
    #
    (O, o, ev.RECV, O, o, (_.TAKE_OR_WAIT,)),
    (E, o, ev.RECV, E, o, (_.TAKE_OR_WAIT,)),
    (O, e, ev.RECV, O, e, (_.TAKE_OR_END,)),
    (E, e, ev.RECV, E, e, (_.TAKE_OR_END,)),
    (X, e, ev.RECV, X, e, (_.TAKE_OR_END,)),
    (X, x, ev.RECV, X, x, (_.TAKE_OR_RAISE,)),
    (E, x, ev.RECV, E, x, (_.TAKE_OR_RAISE,)),
    #
    (O, o, ev.CLOSE_SEND, E, o, (_.EMIT_END, _.INTERRUPT_SENDS)),
    (O, e, ev.CLOSE_SEND, E, e, (_.EMIT_END, _.INTERRUPT_SENDS)),
    (E, o, ev.CLOSE_SEND, E, o, ()),
    (E, e, ev.CLOSE_SEND, E, e, ()),
    (E, x, ev.CLOSE_SEND, E, x, ()),
    #
    (O, o, ev.CLOSE, E, x, (_.EMIT_END, _.INTERRUPT_SENDS, _.EMIT_ERROR, _.RESET_RECV, _.FINISH)),
    (E, o, ev.CLOSE, E, x, (_.EMIT_ERROR, _.RESET_RECV, _.FINISH)),
    (O, e, ev.CLOSE, E, e, (_.EMIT_END, _.INTERRUPT_SENDS, _.FINISH)),
    (E, e, ev.CLOSE, E, e, (_.FINISH,)),
    (X, x, ev.CLOSE, X, x, (_.RESET_RECV, _.FINISH)),
    (X, e, ev.CLOSE, X, e, (_.FINISH,)),
    (E, x, ev.CLOSE, E, x, (_.RESET_RECV, _.FINISH)),
    #
    (O, o, ev.ABORT, X, x, (_.EMIT_ERROR, _.RESET_SEND, _.RESET_RECV, _.FINISH)),
    (E, o, ev.ABORT, E, x, (_.EMIT_ERROR, _.RESET_RECV, _.FINISH)),
    (O, e, ev.ABORT, X, e, (_.EMIT_ERROR, _.RESET_SEND, _.FINISH)),
    (E, e, ev.ABORT, E, e, (_.FINISH,)),
    (X, x, ev.ABORT, X, x, (_.RESET_RECV, _.FINISH)),
    (X, e, ev.ABORT, X, e, (_.FINISH,)),
    (E, x, ev.ABORT, E, x, (_.RESET_RECV, _.FINISH)),
    #
    (O, o, ev.OWNER_DEATH, X, x, (_.EMIT_ERROR, _.RESET_SEND, _.RESET_RECV, _.FINISH)),
    (E, o, ev.OWNER_DEATH, E, x, (_.EMIT_ERROR, _.RESET_RECV, _.FINISH)),
    (O, e, ev.OWNER_DEATH, X, e, (_.EMIT_ERROR, _.RESET_SEND, _.FINISH)),
    (E, e, ev.OWNER_DEATH, E, e, (_.FINISH,)),
    (X, x, ev.OWNER_DEATH, X, x, (_.RESET_RECV, _.FINISH)),
    (X, e, ev.OWNER_DEATH, X, e, (_.FINISH,)),
    (E, x, ev.OWNER_DEATH, E, x, (_.RESET_RECV, _.FINISH)),
    #
    (O, o, ev.REPLY, E, o, (_.INTERRUPT_SENDS, _.STORE_REPLY, _.EMIT_REPLY)),
    (O, e, ev.REPLY, E, e, (_.INTERRUPT_SENDS, _.STORE_REPLY, _.EMIT_REPLY)),
    #
    (O, o, ev.REPLY_ERROR, X, x, (_.STORE_REPLY_ERROR, _.EMIT_ERROR, _.RESET_SEND, _.RESET_RECV)),
    (O, e, ev.REPLY_ERROR, X, e, (_.STORE_REPLY_ERROR, _.EMIT_ERROR, _.RESET_SEND)),
    #
    (O, o, ev.AWAIT_REPLY, O, o, (_.WAIT_REPLY,)),
    (E, o, ev.AWAIT_REPLY, E, o, (_.WAIT_REPLY,)),
    (O, e, ev.AWAIT_REPLY, O, e, (_.RETURN_REPLY,)),
    (E, e, ev.AWAIT_REPLY, E, e, (_.RETURN_REPLY,)),
    (X, e, ev.AWAIT_REPLY, X, e, (_.RETURN_REPLY,)),
    (X, x, ev.AWAIT_REPLY, X, x, (_.RAISE_ERROR,)),
    (E, x, ev.AWAIT_REPLY, E, x, (_.RAISE_ERROR,)),
    #
    (O, o, ev.DELIVER_CHUNK, O, o, (_.BUFFER_CHUNK,)),
    (E, o, ev.DELIVER_CHUNK, E, o, (_.BUFFER_CHUNK,)),
    (O, e, ev.DELIVER_CHUNK, O, e, (_.DROP_CHUNK,)),
    (E, e, ev.DELIVER_CHUNK, E, e, (_.DROP_CHUNK,)),
    (X, x, ev.DELIVER_CHUNK, X, x, (_.DROP_CHUNK,)),
    (X, e, ev.DELIVER_CHUNK, X, e, (_.DROP_CHUNK,)),
    (E, x, ev.DELIVER_CHUNK, E, x, (_.DROP_CHUNK,)),
    #
    (O, o, ev.DELIVER_END, O, e, (_.END_RECV,)),
    (E, o, ev.DELIVER_END, E, e, (_.END_RECV,)),
    (O, e, ev.DELIVER_END, O, e, ()),
    (E, e, ev.DELIVER_END, E, e, ()),
    (X, x, ev.DELIVER_END, X, x, ()),
    (X, e, ev.DELIVER_END, X, e, ()),
    (E, x, ev.DELIVER_END, E, x, ()),
    #
    (O, o, ev.DELIVER_REPLY, O, e, (_.STORE_REPLY, _.END_RECV)),
    (E, o, ev.DELIVER_REPLY, E, e, (_.STORE_REPLY, _.END_RECV)),
    (O, e, ev.DELIVER_REPLY, O, e, ()),
    (E, e, ev.DELIVER_REPLY, E, e, ()),
    (X, x, ev.DELIVER_REPLY, X, x, ()),
    (X, e, ev.DELIVER_REPLY, X, e, ()),
    (E, x, ev.DELIVER_REPLY, E, x, ()),
    #
    (O, o, ev.DELIVER_ERROR, X, x, (_.RESET_SEND, _.FAIL_RECV)),
    (E, o, ev.DELIVER_ERROR, E, x, (_.FAIL_RECV,)),
    (O, e, ev.DELIVER_ERROR, X, e, (_.RESET_SEND,)),
    (E, e, ev.DELIVER_ERROR, E, e, ()),
    (X, x, ev.DELIVER_ERROR, X, x, ()),
    (X, e, ev.DELIVER_ERROR, X, e, ()),
    (E, x, ev.DELIVER_ERROR, E, x, ()),
    #
    (O, o, ev.GRANT_CREDIT, O, o, (_.ADD_CREDIT,)),
    (E, o, ev.GRANT_CREDIT, E, o, (_.ADD_CREDIT,)),
    (O, e, ev.GRANT_CREDIT, O, e, (_.ADD_CREDIT,)),
    (E, e, ev.GRANT_CREDIT, E, e, (_.ADD_CREDIT,)),
    (X, x, ev.GRANT_CREDIT, X, x, (_.ADD_CREDIT,)),
    (X, e, ev.GRANT_CREDIT, X, e, (_.ADD_CREDIT,)),
    (E, x, ev.GRANT_CREDIT, E, x, (_.ADD_CREDIT,)),
    #
    (O, o, ev.PEER_VIOLATION, X, x, (_.EMIT_ERROR, _.RESET_SEND, _.RESET_RECV)),
    (E, o, ev.PEER_VIOLATION, E, x, (_.EMIT_ERROR, _.RESET_RECV)),
)


Row = tuple[SendState, RecvState, Event, SendState, RecvState, tuple[Effect, ...]]


def _build(rows: tuple[Row, ...]) -> dict[Key, Transition]:
    table: dict[Key, Transition] = {}
    for send, recv, event, send_next, recv_next, effects in rows:
        key = (send, recv, event)
        if key in table:
            raise AssertionError(f"duplicate row {key}")
        table[key] = Transition(send_next, recv_next, effects)
    return table


TRANSITIONS: Final[Mapping[Key, Transition]] = _build(_ROWS)


def transition(send: SendState, recv: RecvState, event: Event) -> Transition | None:
    """The table's row for this state and event, or None when the event is illegal there."""
    return TRANSITIONS.get((send, recv, event))


C, S = Role.CLIENT, Role.SERVER
_ALWAYS = frozenset({ev.CLOSE, ev.ABORT})

# Which owner calls a mode and role may make at all (gRPC's cardinality rules).
CALL_RULES: Final[Mapping[tuple[Mode, Role], frozenset[Event]]] = {
    (Mode.UNARY, C): _ALWAYS | {ev.SEND, ev.CLOSE_SEND, ev.AWAIT_REPLY},
    (Mode.UNARY, S): _ALWAYS | {ev.RECV, ev.REPLY, ev.REPLY_ERROR},
    (Mode.SERVER_STREAM, C): _ALWAYS | {ev.SEND, ev.CLOSE_SEND, ev.RECV},
    (Mode.SERVER_STREAM, S): _ALWAYS | {ev.SEND, ev.CLOSE_SEND, ev.RECV, ev.REPLY_ERROR},
    (Mode.CLIENT_STREAM, C): _ALWAYS | {ev.SEND, ev.CLOSE_SEND, ev.AWAIT_REPLY},
    (Mode.CLIENT_STREAM, S): _ALWAYS | {ev.RECV, ev.REPLY, ev.REPLY_ERROR},
    (Mode.BIDI, C): _ALWAYS | {ev.SEND, ev.CLOSE_SEND, ev.RECV, ev.AWAIT_REPLY},
    (Mode.BIDI, S): _ALWAYS | {ev.SEND, ev.CLOSE_SEND, ev.RECV, ev.REPLY, ev.REPLY_ERROR},
}

SINGLE_REQUEST_MODES: Final = frozenset({Mode.UNARY, Mode.SERVER_STREAM})
REPLY_MODES: Final = frozenset({Mode.UNARY, Mode.CLIENT_STREAM})  # the server must reply


def may_send_chunks(mode: Mode, role: Role) -> bool:
    """Whether this side may send chunks at all in this mode."""
    return ev.SEND in CALL_RULES[(mode, role)]


def may_reply(mode: Mode, role: Role) -> bool:
    """Whether this side may send the terminal reply in this mode."""
    return ev.REPLY in CALL_RULES[(mode, role)]


def may_end(mode: Mode, role: Role) -> bool:
    """Whether this side may end its sending direction with END (not a reply) in this mode."""
    return ev.CLOSE_SEND in CALL_RULES[(mode, role)]
