"""The transition table's effects, one function each, and the credit and waiter helpers they share.

`StreamMachine.step` moves the direction states and then calls `EFFECTS[effect]`
for each effect of the row, in order. An effect changes only the machine it is
given and reaches the outside only through the machine's `Outbox`, so it stays
sans-IO like the machine.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from streamlet.codec.status import StatusCode, StreamError

from .credit import chunk_charge
from .table import Effect, Event, ReplyState, Role, SendState

if TYPE_CHECKING:
    from .machine import StreamMachine, Waiter


def owner_death_error() -> StreamError:
    """The error a stream whose owner's scope was cancelled or raised stores and sends."""
    return StreamError(StatusCode.CANCELLED, "the stream's owner was cancelled or raised")


def error_for(m: StreamMachine, event: Event, arg: object) -> tuple[StreamError, StreamError]:
    """The (stored here, sent to the peer) errors a terminal event carries."""
    if isinstance(arg, StreamError):
        return arg, arg
    if event is Event.CLOSE:
        return (
            StreamError(StatusCode.CANCELLED, "the stream was closed before the peer's end"),
            StreamError(StatusCode.CANCELLED, "the peer closed the stream"),
        )
    death = owner_death_error()
    return death, death


def _store_error(m: StreamMachine, error: StreamError) -> None:
    if m.error is None:
        m.error = error
        if m.on_error is not None:
            m.on_error(error)


def _send_now(m: StreamMachine, payload: bytes) -> None:
    m.send_credit -= chunk_charge(len(payload))
    m.chunks_sent += 1
    m.bytes_sent += len(payload)
    m.outbox.emit_chunk(payload)
    if m.rules.single_request:
        m.step(Event.CLOSE_SEND)  # the one request chunk also ends the send side


def _take(m: StreamMachine, caller: Waiter | None) -> None:
    payload, charge = m.buffer.popleft()
    m.buffered_bytes -= charge
    m.outbox.resolve(caller, payload)
    _consumed(m, charge)


def _consumed(m: StreamMachine, charge: int) -> None:
    """Count a chunk the owner took; return credit in batches.

    Returning once half the window is consumed keeps CREDIT messages rare.
    The second condition prevents a deadlock: with the buffer empty, a
    sender still blocked must have consumed > window - its chunk, so all
    consumed credit goes back whenever the next chunk might not fit.
    """
    consumed = m.recv_consumed + charge
    if consumed * 2 >= m.window or (
        not m.buffer and consumed + chunk_charge(m.max_chunk_size) > m.window
    ):
        m.recv_consumed = 0
        m.recv_outstanding -= consumed
        m.outbox.emit_credit(consumed)
    else:
        m.recv_consumed = consumed


def _park(m: StreamMachine, waiters: deque[Waiter | None], caller: Waiter | None) -> None:
    is_waiting = m.outbox.is_waiting
    while waiters and not is_waiting(waiters[0]):
        waiters.popleft()
    waiters.append(caller)


# -- the effects -----------------------------------------------------------------------------

EffectFn = Callable[["StreamMachine", Event, object, "Waiter | None"], None]


def _emit_chunk(m: StreamMachine, event: Event, arg: object, caller: Waiter | None) -> None:
    assert isinstance(arg, bytes)
    if m.blocked_sends or chunk_charge(len(arg)) > m.send_credit:
        m.blocked_sends.append((caller, arg))  # sends leave in order, once credit allows
        return
    m.outbox.resolve(caller, None)
    _send_now(m, arg)


def _emit_end(m: StreamMachine, event: Event, arg: object, caller: Waiter | None) -> None:
    m.outbox.emit_end()


def _emit_reply(m: StreamMachine, event: Event, arg: object, caller: Waiter | None) -> None:
    assert isinstance(arg, bytes)
    m.outbox.emit_reply(arg)


def _emit_error(m: StreamMachine, event: Event, arg: object, caller: Waiter | None) -> None:
    m.outbox.emit_error(error_for(m, event, arg)[1])


def _interrupt_sends(m: StreamMachine, event: Event, arg: object, caller: Waiter | None) -> None:
    while m.blocked_sends:
        m.outbox.interrupt(m.blocked_sends.popleft()[0])


def _take_or_wait(m: StreamMachine, event: Event, arg: object, caller: Waiter | None) -> None:
    if m.buffer:
        _take(m, caller)
    else:
        _park(m, m.recv_waiters, caller)


def _take_or_end(m: StreamMachine, event: Event, arg: object, caller: Waiter | None) -> None:
    if m.buffer:
        _take(m, caller)
    else:
        m.outbox.end(caller)


def _take_or_raise(m: StreamMachine, event: Event, arg: object, caller: Waiter | None) -> None:
    if m.buffer:
        _take(m, caller)  # chunks the peer sent before its error stay readable, in order
    else:
        assert m.error is not None
        m.outbox.fail(caller, m.error)


def _raise_error(m: StreamMachine, event: Event, arg: object, caller: Waiter | None) -> None:
    assert m.error is not None
    m.outbox.fail(caller, m.error)


def _wait_reply(m: StreamMachine, event: Event, arg: object, caller: Waiter | None) -> None:
    _park(m, m.reply_waiters, caller)


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
            _consumed(m, charge)
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
    _store_error(m, error_for(m, event, arg)[0])
    assert m.error is not None
    while m.blocked_sends:
        m.outbox.fail(m.blocked_sends.popleft()[0], m.error)


def _fail_recv(m: StreamMachine, event: Event, arg: object, caller: Waiter | None) -> None:
    _store_error(m, error_for(m, event, arg)[0])
    assert m.error is not None
    if m.reply is ReplyState.NONE and m.role is Role.CLIENT:
        m.reply = ReplyState.ERROR
    while m.recv_waiters:  # parked only while the buffer is empty
        m.outbox.fail(m.recv_waiters.popleft(), m.error)
    while m.reply_waiters:
        m.outbox.fail(m.reply_waiters.popleft(), m.error)


def _reset_recv(m: StreamMachine, event: Event, arg: object, caller: Waiter | None) -> None:
    _fail_recv(m, event, arg, caller)
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
        _send_now(m, payload)


def _finish(m: StreamMachine, event: Event, arg: object, caller: Waiter | None) -> None:
    m.finished = True


EFFECTS: Final[dict[Effect, EffectFn]] = {
    Effect.EMIT_CHUNK: _emit_chunk,
    Effect.EMIT_END: _emit_end,
    Effect.EMIT_REPLY: _emit_reply,
    Effect.EMIT_ERROR: _emit_error,
    Effect.INTERRUPT_SENDS: _interrupt_sends,
    Effect.TAKE_OR_WAIT: _take_or_wait,
    Effect.TAKE_OR_END: _take_or_end,
    Effect.TAKE_OR_RAISE: _take_or_raise,
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
    Effect.FAIL_RECV: _fail_recv,
    Effect.ADD_CREDIT: _add_credit,
    Effect.FINISH: _finish,
}
