"""A hypothesis state machine over two paired pure machines, checked against a simple model.

Deliveries sit in a queue per direction until a rule delivers them, so every
interleaving of owner calls and in-flight frames is explored, sans trio.
"""

from __future__ import annotations

import copy
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from streamlet.actors.errors import StreamStateError
from streamlet.actors.machine import StreamMachine
from streamlet.actors.table import ANSWERED_BY_EFFECTS, Event, Role
from streamlet.codec.modes import Mode
from streamlet.codec.status import StatusCode, StreamError

WINDOW = 128
MAX_CHUNK = 64


class Call:
    """One owner call; `outcomes` must end up with exactly one entry unless it was cancelled."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.cancelled = False
        self.outcomes: list[tuple[str, Any]] = []


class Side:
    """One machine's outbox: queues its deliveries for the peer, answers its calls."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.wire: list[tuple[Event, object]] = []
        self.emitted: list[bytes] = []
        self.received: list[bytes] = []
        self.calls: list[Call] = []

    def emit_chunk(self, payload: bytes) -> None:
        self.emitted.append(payload)
        self.wire.append((Event.DELIVER_CHUNK, payload))

    def emit_end(self) -> None:
        self.wire.append((Event.DELIVER_END, None))

    def emit_reply(self, payload: bytes) -> None:
        self.wire.append((Event.DELIVER_REPLY, payload))

    def emit_error(self, error: StreamError) -> None:
        self.wire.append((Event.DELIVER_ERROR, error))

    def emit_credit(self, increment: int) -> None:
        assert increment > 0
        self.wire.append((Event.GRANT_CREDIT, increment))

    def is_waiting(self, caller: object) -> bool:
        assert isinstance(caller, Call)
        return not caller.cancelled and not caller.outcomes

    def _answer(self, caller: object, kind: str, value: Any) -> bool:
        assert isinstance(caller, Call)
        if caller.cancelled:
            return False
        assert not caller.outcomes, "a caller was answered twice"
        caller.outcomes.append((kind, value))
        if caller.kind == "recv" and kind == "value":
            self.received.append(value)
        return True

    def resolve(self, caller: object, value: bytes | None) -> bool:
        return self._answer(caller, "value", value)

    def end(self, caller: object) -> bool:
        return self._answer(caller, "end", None)

    def interrupt(self, caller: object) -> bool:
        return self._answer(caller, "closed", None)

    def fail(self, caller: object, error: BaseException) -> bool:
        return self._answer(caller, "error", error)


def _snapshot(machine: StreamMachine) -> dict[str, object]:
    names = [f.name for f in machine.__attrs_attrs__ if f.name != "outbox"]  # type: ignore[attr-defined]
    return {name: copy.copy(getattr(machine, name)) for name in names}


class PairedMachines(RuleBasedStateMachine):
    """Random owner calls and deliveries on a client and a server machine."""

    sides: dict[Role, Side]
    machines: dict[Role, StreamMachine]

    @initialize(mode=st.sampled_from(list(Mode)))
    def start(self, mode: Mode) -> None:
        self.sides = {role: Side(role.value) for role in Role}
        self.machines = {
            role: StreamMachine(
                id=1,
                role=role,
                mode=mode,
                outbox=self.sides[role],
                window=WINDOW,
                max_chunk_size=MAX_CHUNK,
            )
            for role in Role
        }
        for role in Role:
            self.machines[role].send_credit = WINDOW  # the peer's initial window
        self.counter = 0

    def _owner(self, role: Role, event: Event, arg: object = None, kind: str | None = None) -> None:
        machine = self.machines[role]
        call = Call(kind or event.value)
        before = _snapshot(machine)
        wire_before = len(self.sides[role].wire)
        try:
            machine.step(event, arg, call)
        except (StreamStateError, StreamError) as exc:
            if isinstance(exc, StreamError):  # a send after the peer failed the call
                assert event in (Event.SEND, Event.CLOSE_SEND)
                assert exc == machine.error and not machine.owner_ended
            assert _snapshot(machine) == before, "a refused call changed the stream"
            assert len(self.sides[role].wire) == wire_before
            assert not call.outcomes
            return
        if event not in ANSWERED_BY_EFFECTS:  # as the actor does
            self.sides[role].resolve(call, None)
        self.sides[role].calls.append(call)

    @rule(role=st.sampled_from(list(Role)), size=st.integers(0, MAX_CHUNK))
    def send(self, role: Role, size: int) -> None:
        self.counter += 1
        payload = (
            (b"%d:" % self.counter).ljust(size, b".")[: max(size, 0)]
            if size >= 8
            else b"%d" % self.counter
        )
        self._owner(role, Event.SEND, payload)

    @rule(role=st.sampled_from(list(Role)))
    def recv(self, role: Role) -> None:
        self._owner(role, Event.RECV)

    @rule(role=st.sampled_from(list(Role)))
    def await_reply(self, role: Role) -> None:
        self._owner(role, Event.AWAIT_REPLY)

    @rule(role=st.sampled_from(list(Role)))
    def close_send(self, role: Role) -> None:
        self._owner(role, Event.CLOSE_SEND)

    @rule(role=st.sampled_from(list(Role)))
    def close(self, role: Role) -> None:
        self._owner(role, Event.CLOSE)

    @rule(role=st.sampled_from(list(Role)))
    def abort(self, role: Role) -> None:
        self._owner(role, Event.ABORT, StreamError(StatusCode.ABORTED, role.value))

    @rule(role=st.sampled_from(list(Role)))
    def reply(self, role: Role) -> None:
        self._owner(role, Event.REPLY, b"reply")

    @rule(role=st.sampled_from(list(Role)))
    def reply_error(self, role: Role) -> None:
        self._owner(role, Event.REPLY_ERROR, StreamError(StatusCode.INVALID_ARGUMENT, "no"))

    @rule(role=st.sampled_from(list(Role)), data=st.data())
    def cancel_a_waiter(self, role: Role, data: st.DataObject) -> None:
        waiting = [c for c in self.sides[role].calls if not c.outcomes and not c.cancelled]
        if waiting:
            data.draw(st.sampled_from(waiting)).cancelled = True

    @precondition(lambda self: any(side.wire for side in self.sides.values()))
    @rule(role=st.sampled_from(list(Role)))
    def deliver(self, role: Role) -> None:
        wire = self.sides[role].wire
        if wire:
            event, arg = wire.pop(0)
            peer = Role.SERVER if role is Role.CLIENT else Role.CLIENT
            self.machines[peer].step(event, arg)

    @invariant()
    def chunks_arrive_in_order_exactly_once(self) -> None:
        for role, peer in ((Role.CLIENT, Role.SERVER), (Role.SERVER, Role.CLIENT)):
            received = self.sides[peer].received
            assert received == self.sides[role].emitted[: len(received)]

    @invariant()
    def buffer_never_exceeds_the_window(self) -> None:
        for machine in self.machines.values():
            assert machine.buffered_bytes <= WINDOW
            assert 0 <= machine.recv_outstanding <= WINDOW
            assert machine.send_credit >= 0

    def teardown(self) -> None:
        if not hasattr(self, "machines"):
            return
        for role in Role:
            self.machines[role].step(Event.CLOSE)
        while any(side.wire for side in self.sides.values()):
            for role in Role:
                self.deliver(role)
        for role, machine in self.machines.items():
            assert machine.finished and not machine.has_waiters()
            for call in self.sides[role].calls:
                assert call.cancelled or len(call.outcomes) == 1, (role, call.kind)


PairedMachines.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_paired_machines_against_the_model = PairedMachines.TestCase
