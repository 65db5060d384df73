"""A hypothesis state machine driving a paired client and server actor under trio.

The rules record a program of owner calls, cancellations and owner deaths; the
teardown replays it in one `trio.run` with an autojumping mock clock, letting
everything settle after each action and checking the model: chunks arrive in
order and exactly once, every call ends exactly once, illegal calls raise and
change nothing, the buffer stays within the window, and no task is left over.
"""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
import trio
import trio.testing
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule
from streamlet.actors import Role, Stream, StreamStateError, pair
from streamlet.codec.chunks import Encoding
from streamlet.codec.modes import Mode
from streamlet.codec.status import StatusCode, StreamError

WINDOW = 256
MAX_CHUNK = 96
CALLS = ["send", "recv", "close_send", "close", "abort", "reply", "reply_error", "await_reply"]
EXPECTED = (StreamStateError, StreamError, trio.EndOfChannel, trio.ClosedResourceError)


class Program:
    """Replays the recorded actions on a real pair and checks the model after each."""

    def __init__(
        self, mode: Mode, encoding: Encoding, actions: list[tuple[str, Role, int]]
    ) -> None:
        self.mode, self.encoding, self.actions = mode, encoding, actions
        self.streams = {
            role: Stream(
                role=role, mode=mode, encoding=encoding, window=WINDOW, max_chunk_size=MAX_CHUNK
            )
            for role in Role
        }
        pair(self.streams[Role.CLIENT], self.streams[Role.SERVER])
        self.sent: dict[Role, list[Any]] = {role: [] for role in Role}
        self.received: dict[Role, list[Any]] = {role: [] for role in Role}
        self.outcomes: list[tuple[str, object]] = []
        self.pending: dict[Role, list[trio.CancelScope]] = {role: [] for role in Role}
        self.sending: dict[Role, bool] = {role: False for role in Role}
        self.dead: set[Role] = set()
        self.calls_started = 0
        self.finished = trio.Event()

    def value(self, n: int) -> Any:
        return b"%d" % n if self.encoding is Encoding.RAW else n

    async def call(self, name: str, role: Role, n: int, *, task_status: Any) -> None:
        stream = self.streams[role]
        self.calls_started += 1
        with trio.CancelScope() as scope:
            self.pending[role].append(scope)
            task_status.started()
            result: object = "returned"
            try:
                if name == "send":
                    self.sending[role] = True
                    self.sent[role].append(self.value(n))
                    await stream.send(self.value(n))
                elif name == "recv":
                    chunk = await stream.recv()
                    self.received[role].append(chunk)
                elif name in ("abort", "reply_error"):
                    await getattr(stream, name)(StatusCode.ABORTED, f"{name} {n}")
                elif name == "reply":
                    await stream.reply(self.value(n))
                else:
                    await getattr(stream, name)()
            except EXPECTED as exc:  # each call ends exactly once, in one of these outcomes
                result = exc
            except trio.Cancelled:
                result = "cancelled"
                raise
            finally:
                self.sending[role] = self.sending[role] and name != "send"
                self.pending[role].remove(scope)
                self.outcomes.append((name, result))

    def check(self) -> None:
        for role, peer in ((Role.CLIENT, Role.SERVER), (Role.SERVER, Role.CLIENT)):
            received = self.received[peer]
            assert received == self.sent[role][: len(received)], "chunks out of order or lost"
            info = self.streams[role].info()
            assert info.buffered_bytes <= WINDOW + MAX_CHUNK
            assert info.send_credit >= 0 and info.recv_credit >= 0

    async def run(self) -> None:
        with trio.fail_after(600):
            async with trio.open_nursery() as outer:
                owners: dict[Role, trio.Nursery] = {}
                for role in Role:
                    owners[role] = await outer.start(self._owner, role)
                for action, role, n in self.actions:
                    await self._act(owners, action, role, n)
                    await trio.testing.wait_all_tasks_blocked()
                    self.check()
                for role in Role:
                    if role not in self.dead:
                        owners[role].start_soon(self.streams[role].close)
                self.finished.set()  # the owners' scopes now end once their tasks have
        await trio.testing.wait_all_tasks_blocked()
        for stream in self.streams.values():
            info = stream.info()
            assert info.finished and info.waiters == 0

    async def _owner(self, role: Role, *, task_status: Any) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.streams[role].run)
            task_status.started(nursery)
            await self.finished.wait()  # keep the owner scope open for later calls

    async def _act(self, owners: dict[Role, trio.Nursery], action: str, role: Role, n: int) -> None:
        if role in self.dead:
            return
        if action == "owner_death":
            self.dead.add(role)
            owners[role].cancel_scope.cancel()
        elif action == "cancel_pending":
            for scope in list(self.pending[role]):
                scope.cancel()
        elif action == "send" and self.sending[role]:
            return  # one send at a time per side, so the sent order is the call order
        else:
            before = self.streams[role].info()
            count = len(self.outcomes)
            await owners[role].start(self.call, action, role, n)
            await trio.testing.wait_all_tasks_blocked()
            new = self.outcomes[count:]
            if new and new[0][0] == action and isinstance(new[0][1], StreamStateError):
                assert self.streams[role].info() == before, "an illegal call changed the stream"


class PairedActors(RuleBasedStateMachine):
    """Records random owner calls, cancellations and owner deaths for `Program`."""

    @initialize(mode=st.sampled_from(list(Mode)), encoding=st.sampled_from(list(Encoding)))
    def start(self, mode: Mode, encoding: Encoding) -> None:
        self.mode, self.encoding = mode, encoding
        self.actions: list[tuple[str, Role, int]] = []

    @rule(call=st.sampled_from(CALLS), role=st.sampled_from(list(Role)))
    def owner_call(self, call: str, role: Role) -> None:
        self.actions.append((call, role, len(self.actions)))

    @rule(role=st.sampled_from(list(Role)))
    def cancel_pending(self, role: Role) -> None:
        self.actions.append(("cancel_pending", role, 0))

    @rule(role=st.sampled_from(list(Role)))
    def owner_death(self, role: Role) -> None:
        self.actions.append(("owner_death", role, 0))

    def teardown(self) -> None:
        if not hasattr(self, "actions"):
            return
        program = Program(self.mode, self.encoding, self.actions)
        trio.run(program.run, clock=trio.testing.MockClock(autojump_threshold=0))
        assert len(program.outcomes) == program.calls_started  # every call ended exactly once


PairedActors.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_paired_actors_against_the_model = PairedActors.TestCase
