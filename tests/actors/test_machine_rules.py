"""The pure machine, called directly: each rule of specs/stream.md as a plain function call."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Caller, MachineFactory

from streamlet.actors.errors import StreamStateError
from streamlet.actors.machine import MIN_CHUNK_CHARGE, chunk_charge
from streamlet.actors.table import (
    CALL_RULES,
    OWNER_CALLS,
    TRANSITIONS,
    Event,
    RecvState,
    ReplyState,
    Role,
    SendState,
    StreamState,
    transition,
)
from streamlet.codec.modes import Mode
from streamlet.codec.status import StatusCode, StreamError

C, S = Role.CLIENT, Role.SERVER


def _snapshot(machine: object) -> dict[str, object]:
    fields = [f.name for f in machine.__attrs_attrs__ if f.name != "outbox"]  # type: ignore[attr-defined]
    return {name: copy.copy(getattr(machine, name)) for name in fields}


def test_transition_function_is_the_table() -> None:
    for (send, recv, event), row in TRANSITIONS.items():
        assert transition(send, recv, event) == row
    assert transition(SendState.ENDED, RecvState.OPEN, Event.SEND) is None


def test_send_after_close_send_raises(
    make_machine: MachineFactory, new_caller: type[Caller]
) -> None:
    m, _out = make_machine(Mode.BIDI, C)
    m.step(Event.CLOSE_SEND)
    before = _snapshot(m)
    with pytest.raises(StreamStateError, match=r"send on stream 7 .*half_closed_local"):
        m.step(Event.SEND, b"x", new_caller())
    assert _snapshot(m) == before


@pytest.mark.parametrize("mode", [Mode.UNARY, Mode.SERVER_STREAM])
def test_single_request_client_send_implies_close_send(
    mode: Mode, make_machine: MachineFactory, new_caller: type[Caller]
) -> None:
    m, out = make_machine(mode, C)
    caller = new_caller()
    m.step(Event.SEND, b"req", caller)
    assert caller.outcomes == [("value", None)]
    assert out.take() == [("chunk", b"req"), ("end", None)]
    assert m.send is SendState.ENDED
    m.step(Event.CLOSE_SEND)  # a no-op now
    with pytest.raises(StreamStateError):
        m.step(Event.SEND, b"again", new_caller())


@pytest.mark.parametrize("mode", [Mode.UNARY, Mode.SERVER_STREAM])
def test_single_request_client_close_send_before_its_request_raises(
    mode: Mode, make_machine: MachineFactory
) -> None:
    m, _ = make_machine(mode, C)
    with pytest.raises(StreamStateError, match="exactly one request"):
        m.step(Event.CLOSE_SEND)
    assert m.send is SendState.OPEN


@pytest.mark.parametrize("mode", [Mode.UNARY, Mode.CLIENT_STREAM, Mode.BIDI])
def test_second_reply_raises(mode: Mode, make_machine: MachineFactory) -> None:
    m, out = make_machine(mode, S)
    m.step(Event.REPLY, b"one")
    before = _snapshot(m)
    with pytest.raises(StreamStateError, match="reply on stream 7"):
        m.step(Event.REPLY, b"two")
    assert _snapshot(m) == before
    assert out.take() == [("reply", b"one")]


@pytest.mark.parametrize("mode", list(Mode))
def test_reply_from_client_raises(mode: Mode, make_machine: MachineFactory) -> None:
    m, _ = make_machine(mode, C)
    with pytest.raises(StreamStateError, match="may not reply"):
        m.step(Event.REPLY, b"x")


@pytest.mark.parametrize("mode", list(Mode))
def test_await_reply_from_server_raises(
    mode: Mode, make_machine: MachineFactory, new_caller: type[Caller]
) -> None:
    m, _ = make_machine(mode, S)
    with pytest.raises(StreamStateError, match="may not await_reply"):
        m.step(Event.AWAIT_REPLY, None, new_caller())


@pytest.mark.parametrize("mode", [Mode.UNARY, Mode.CLIENT_STREAM])
def test_reply_mode_server_send_raises(
    mode: Mode, make_machine: MachineFactory, new_caller: type[Caller]
) -> None:
    m, _ = make_machine(mode, S)
    with pytest.raises(StreamStateError, match="may not send"):
        m.step(Event.SEND, b"x", new_caller())


@pytest.mark.parametrize("mode", [Mode.UNARY, Mode.CLIENT_STREAM])
def test_reply_mode_client_recv_raises(
    mode: Mode, make_machine: MachineFactory, new_caller: type[Caller]
) -> None:
    m, _ = make_machine(mode, C)
    with pytest.raises(StreamStateError, match="may not recv"):
        m.step(Event.RECV, None, new_caller())


def test_server_stream_server_reply_raises(make_machine: MachineFactory) -> None:
    m, _ = make_machine(Mode.SERVER_STREAM, S)
    with pytest.raises(StreamStateError):
        m.step(Event.REPLY, b"x")


def test_bidi_server_may_end_with_end_or_reply(make_machine: MachineFactory) -> None:
    ended, out = make_machine(Mode.BIDI, S)
    ended.step(Event.CLOSE_SEND)
    assert out.take() == [("end", None)]
    replied, out = make_machine(Mode.BIDI, S)
    replied.step(Event.REPLY, b"r")
    assert out.take() == [("reply", b"r")]
    with pytest.raises(StreamStateError):
        ended.step(Event.REPLY, b"r")


@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize("role", list(Role))
def test_calls_the_mode_forbids_raise_in_every_state(
    mode: Mode, role: Role, make_machine: MachineFactory, new_caller: type[Caller]
) -> None:
    for call in OWNER_CALLS - CALL_RULES[(mode, role)]:
        for send, recv, _ in TRANSITIONS:
            m, _ = make_machine(mode, role)
            m.send, m.recv = send, recv
            m.error = StreamError(StatusCode.ABORTED, "x")
            with pytest.raises(StreamStateError, match=call.value):
                m.step(call, b"x", new_caller())


def test_recv_after_peer_error_raises_stored_error(
    make_machine: MachineFactory, new_caller: type[Caller]
) -> None:
    m, _ = make_machine(Mode.BIDI, C)
    error = StreamError(StatusCode.ABORTED, "gone")
    m.step(Event.DELIVER_ERROR, error)
    caller = new_caller()
    m.step(Event.RECV, None, caller)
    assert caller.outcomes == [("error", error)]


def test_recv_after_end_gets_buffered_chunks_then_end(
    make_machine: MachineFactory, new_caller: type[Caller]
) -> None:
    m, _ = make_machine(Mode.BIDI, C)
    m.step(Event.DELIVER_CHUNK, b"a")
    m.step(Event.DELIVER_END)
    first, second = new_caller(), new_caller()
    m.step(Event.RECV, None, first)
    m.step(Event.RECV, None, second)
    assert first.outcomes == [("value", b"a")]
    assert second.outcomes == [("end", None)]


def test_abort_fails_every_waiter_and_tells_the_peer(
    make_machine: MachineFactory, new_caller: type[Caller]
) -> None:
    m, out = make_machine(Mode.BIDI, C, credit=0)
    receiver, replier, sender = new_caller(), new_caller(), new_caller()
    m.step(Event.RECV, None, receiver)
    m.step(Event.AWAIT_REPLY, None, replier)
    m.step(Event.SEND, b"x", sender)  # no credit: waits
    error = StreamError(StatusCode.ABORTED, "stop")
    m.step(Event.ABORT, error)
    assert [c.outcomes for c in (receiver, replier, sender)] == [[("error", error)]] * 3
    assert out.take() == [("error", error)]
    assert m.state is StreamState.RESET and m.finished


def test_abort_after_close_is_a_no_op(make_machine: MachineFactory) -> None:
    m, out = make_machine(Mode.BIDI, C)
    m.step(Event.DELIVER_END)
    m.step(Event.CLOSE)
    out.take()
    m.step(Event.ABORT, StreamError(StatusCode.ABORTED))
    assert out.take() == []
    assert m.state is StreamState.CLOSED


def test_close_before_the_peer_ends_cancels_the_peer(make_machine: MachineFactory) -> None:
    m, out = make_machine(Mode.BIDI, C)
    m.step(Event.DELIVER_CHUNK, b"unread")
    m.step(Event.CLOSE)
    sent = out.take()
    assert sent[0] == ("end", None)
    assert sent[1][0] == "error" and sent[1][1].code is StatusCode.CANCELLED
    assert sent[2] == ("credit", chunk_charge(len(b"unread")))  # dropped bytes return credit
    assert (m.send, m.recv) == (SendState.ENDED, RecvState.RESET)


@pytest.mark.parametrize("mode", [Mode.UNARY, Mode.CLIENT_STREAM])
def test_close_by_a_server_that_owes_a_reply_aborts_with_cancelled(
    mode: Mode, make_machine: MachineFactory
) -> None:
    m, out = make_machine(mode, S)
    m.step(Event.CLOSE)
    [(kind, error)] = out.take()
    assert kind == "error" and error.code is StatusCode.CANCELLED
    assert m.reply is ReplyState.NONE and m.send is SendState.RESET


def test_close_is_idempotent(make_machine: MachineFactory) -> None:
    m, out = make_machine(Mode.BIDI, S)
    m.step(Event.DELIVER_END)
    m.step(Event.CLOSE)
    assert out.take() == [("end", None)]
    m.step(Event.CLOSE)
    assert out.take() == []


def test_send_waits_for_credit_and_chunks_leave_in_order(
    make_machine: MachineFactory, new_caller: type[Caller]
) -> None:
    m, out = make_machine(Mode.BIDI, C, credit=40)
    first, second, third = new_caller("1"), new_caller("2"), new_caller("3")
    m.step(Event.SEND, b"a" * 30, first)
    m.step(Event.SEND, b"b" * 30, second)  # does not fit: waits
    m.step(Event.SEND, b"c", third)  # would fit, but may not overtake
    assert first.outcomes and not second.outcomes and not third.outcomes
    m.step(Event.GRANT_CREDIT, 30)
    assert second.outcomes == [("value", None)] and not third.outcomes
    m.step(Event.GRANT_CREDIT, MIN_CHUNK_CHARGE)
    assert third.outcomes == [("value", None)]
    assert [p for kind, p in out.take() if kind == "chunk"] == [b"a" * 30, b"b" * 30, b"c"]


def test_cancelled_sender_chunk_never_leaves(
    make_machine: MachineFactory, new_caller: type[Caller]
) -> None:
    m, out = make_machine(Mode.BIDI, C, credit=0)
    sender = new_caller()
    m.step(Event.SEND, b"x", sender)
    sender.cancelled = True
    m.step(Event.GRANT_CREDIT, 100)
    assert out.take() == [] and m.send_credit == 100


def test_close_send_interrupts_a_sender_waiting_for_credit(
    make_machine: MachineFactory, new_caller: type[Caller]
) -> None:
    m, out = make_machine(Mode.BIDI, C, credit=0)
    sender = new_caller()
    m.step(Event.SEND, b"x", sender)
    m.step(Event.CLOSE_SEND)
    assert sender.outcomes == [("closed", None)]
    assert out.take() == [("end", None)]


def test_empty_chunk_costs_the_minimum_charge(make_machine: MachineFactory) -> None:
    assert chunk_charge(0) == MIN_CHUNK_CHARGE
    assert chunk_charge(1000) == 1000
    m, _ = make_machine(Mode.BIDI, C, window=64)
    for _ in range(64 // MIN_CHUNK_CHARGE):
        m.step(Event.DELIVER_CHUNK, b"")
    assert m.recv is RecvState.OPEN
    m.step(Event.DELIVER_CHUNK, b"")  # one empty chunk too many
    assert m.recv is RecvState.RESET
    assert m.error is not None and m.error.code is StatusCode.RESOURCE_EXHAUSTED


def test_chunk_beyond_credit_resets_with_resource_exhausted(make_machine: MachineFactory) -> None:
    m, out = make_machine(Mode.BIDI, S, window=100, max_chunk_size=100)
    m.step(Event.DELIVER_CHUNK, b"a" * 60)
    m.step(Event.DELIVER_CHUNK, b"b" * 60)
    assert m.state is StreamState.RESET
    sent = out.take()
    assert sent[0][0] == "error" and sent[0][1].code is StatusCode.RESOURCE_EXHAUSTED
    assert len(m.buffer) == 0


def test_chunk_above_max_chunk_size_resets_with_resource_exhausted(
    make_machine: MachineFactory,
) -> None:
    m, _ = make_machine(Mode.BIDI, S, window=100, max_chunk_size=10)
    m.step(Event.DELIVER_CHUNK, b"a" * 11)
    assert m.error is not None and m.error.code is StatusCode.RESOURCE_EXHAUSTED


def test_late_chunk_after_reset_is_dropped_and_returns_credit(make_machine: MachineFactory) -> None:
    m, out = make_machine(Mode.BIDI, C)
    m.step(Event.ABORT, StreamError(StatusCode.ABORTED))
    out.take()
    m.step(Event.DELIVER_CHUNK, b"late")
    assert out.take() == [("credit", MIN_CHUNK_CHARGE)]
    assert m.chunks_received == 0


@pytest.mark.parametrize(
    ("mode", "role", "event", "arg"),
    [
        (Mode.UNARY, C, Event.DELIVER_CHUNK, b"x"),
        (Mode.CLIENT_STREAM, C, Event.DELIVER_END, None),
        (Mode.SERVER_STREAM, C, Event.DELIVER_REPLY, b"x"),
        (Mode.BIDI, S, Event.DELIVER_REPLY, b"x"),
    ],
)
def test_delivery_the_peer_mode_forbids_resets_with_internal(
    mode: Mode, role: Role, event: Event, arg: object, make_machine: MachineFactory
) -> None:
    m, out = make_machine(mode, role)
    m.step(event, arg)
    assert m.state is StreamState.RESET
    assert m.error is not None and m.error.code is StatusCode.INTERNAL
    assert out.take()[0][0] == "error"


def test_second_request_chunk_resets_a_unary_server(make_machine: MachineFactory) -> None:
    m, _ = make_machine(Mode.UNARY, S)
    m.step(Event.DELIVER_CHUNK, b"one")
    m.step(Event.DELIVER_CHUNK, b"two")
    assert m.error is not None and m.error.code is StatusCode.INTERNAL


def test_credit_returns_once_half_the_window_is_consumed(
    make_machine: MachineFactory, new_caller: type[Caller]
) -> None:
    m, out = make_machine(Mode.BIDI, C, window=1000, max_chunk_size=100)
    for _ in range(8):
        m.step(Event.DELIVER_CHUNK, b"x" * 100)
    grants = []
    for _ in range(8):
        m.step(Event.RECV, None, new_caller())
        grants += [n for kind, n in out.take() if kind == "credit"]
    assert grants == [500]  # one batch at half the window; the rest stays consumed
    assert m.recv_consumed == 300


def test_credit_returns_when_drained_and_a_big_chunk_may_not_fit(
    make_machine: MachineFactory, new_caller: type[Caller]
) -> None:
    # window 1000, max chunk 1000: a sender of a 1000-byte chunk after a small one
    # waits for credit that half-window batching alone would never return.
    m, out = make_machine(Mode.BIDI, C, window=1000, max_chunk_size=1000)
    m.step(Event.DELIVER_CHUNK, b"x" * 20)
    m.step(Event.RECV, None, new_caller())
    assert out.take() == [("credit", 20)]


def test_reply_error_reaches_the_peer_and_local_waiters(
    make_machine: MachineFactory, new_caller: type[Caller]
) -> None:
    m, out = make_machine(Mode.CLIENT_STREAM, S)
    receiver = new_caller()
    m.step(Event.RECV, None, receiver)
    error = StreamError(StatusCode.INVALID_ARGUMENT, "bad")
    m.step(Event.REPLY_ERROR, error)
    assert out.take() == [("error", error)]
    assert receiver.outcomes == [("error", error)]
    assert m.reply is ReplyState.ERROR


def test_error_after_end_keeps_the_end_outcome(
    make_machine: MachineFactory, new_caller: type[Caller]
) -> None:
    m, _ = make_machine(Mode.BIDI, C)
    m.step(Event.DELIVER_END)
    m.step(Event.DELIVER_ERROR, StreamError(StatusCode.CANCELLED))
    caller = new_caller()
    m.step(Event.RECV, None, caller)
    assert caller.outcomes == [("end", None)]
    assert (m.send, m.recv) == (SendState.RESET, RecvState.ENDED)


def test_deliver_reply_wakes_reply_waiters_and_ends_recv(
    make_machine: MachineFactory, new_caller: type[Caller]
) -> None:
    m, _ = make_machine(Mode.BIDI, C)
    replier, receiver = new_caller(), new_caller()
    m.step(Event.AWAIT_REPLY, None, replier)
    m.step(Event.RECV, None, receiver)
    m.step(Event.DELIVER_REPLY, b"r")
    assert replier.outcomes == [("value", b"r")]
    assert receiver.outcomes == [("end", None)]
    late = new_caller()
    m.step(Event.AWAIT_REPLY, None, late)
    assert late.outcomes == [("value", b"r")]


def test_window_smaller_than_minimum_charge_is_rejected(make_machine: MachineFactory) -> None:
    with pytest.raises(ValueError, match="window"):
        make_machine(Mode.BIDI, C, window=8)
