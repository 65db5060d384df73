"""The two ways a message reaches the machine: applied at once when the stream is idle, or queued.

A message posted to an idle stream is applied in the posting task (the fast
path); one posted while the stream is applying another, or before its actor
runs, or with inlining off, waits in the mailbox. These tests show each path
is taken, that a call stays a trio checkpoint on the fast path and behaves at
each of its checkpoints as the spec says, and that random programs give the
very same outcomes and states on either path.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import hypothesis.strategies as st
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from streamlet.actors import Role, Stream, open_pair, open_stream, pair
from streamlet.codec.chunks import Encoding
from streamlet.codec.modes import Mode
from streamlet.codec.status import StreamError

PATHS = ["inline", "mailbox"]


class CancellingLink:
    """A PeerLink that cancels a scope when a chunk or a credit grant goes out through it.

    That happens in the middle of an owner call applied at once, after its
    first checkpoint and before its last: the one moment a cancellation can
    arrive there.
    """

    def __init__(self) -> None:
        self.scope: trio.CancelScope | None = None
        self.frames: list[tuple[str, Any]] = []

    def _cancel(self) -> None:
        if self.scope is not None:
            self.scope.cancel()

    def deliver_chunk(self, payload: bytes) -> None:
        self.frames.append(("chunk", payload))
        self._cancel()

    def deliver_end(self) -> None:
        self.frames.append(("end", None))

    def deliver_error(self, error: StreamError) -> None:
        self.frames.append(("error", error))

    def deliver_reply(self, payload: bytes) -> None:
        self.frames.append(("reply", payload))

    def grant_credit(self, increment: int) -> None:
        self.frames.append(("credit", increment))
        self._cancel()


def _use_path(monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    monkeypatch.setattr(Stream, "_apply_inline", path == "inline")


# -- which path is taken ---------------------------------------------------------------------


async def test_a_send_to_an_idle_pair_is_applied_before_it_returns(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_pair(mode=Mode.BIDI, encoding=Encoding.RAW) as (client, server):
        await client.send(b"a")
        # No other task ran in between: the client's machine and the server's took it inline.
        assert client.info().chunks_sent == 1
        assert server.info().buffered_chunks == 1
        assert await server.recv() == b"a"


async def test_with_inlining_off_a_send_waits_for_the_actor_tasks(
    monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    _use_path(monkeypatch, "mailbox")
    async with open_pair(mode=Mode.BIDI, encoding=Encoding.RAW) as (client, server):
        await client.send(b"a")
        assert client.info().chunks_sent == 1  # the client's actor applied it, then answered
        await trio.testing.wait_all_tasks_blocked()
        assert server.info().buffered_chunks == 1  # the server's actor, in its own time
        assert await server.recv() == b"a"


async def test_credit_granted_back_during_a_send_is_queued_and_applied_before_it_returns(
    autojump_clock: trio.testing.MockClock,
) -> None:
    pair_ = open_pair(mode=Mode.BIDI, encoding=Encoding.RAW, window=64, max_chunk_size=32)
    async with pair_ as (client, server), trio.open_nursery() as nursery:
        nursery.start_soon(server.recv)
        await trio.testing.wait_all_tasks_blocked()  # the server's recv is parked
        await client.send(b"x" * 32)
        # The parked recv took the chunk, half the window was consumed, and the grant
        # reached the client while its machine was still applying the send: queued in
        # its mailbox and applied by the same loop, before send returned.
        assert client.info().send_credit == 64
        assert client.info().waiters == 0


async def test_messages_posted_before_the_actor_runs_wait_for_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    client = Stream(role=Role.CLIENT, mode=Mode.BIDI, encoding=Encoding.RAW)
    server = Stream(role=Role.SERVER, mode=Mode.BIDI, encoding=Encoding.RAW)
    pair(client, server)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        nursery.start_soon(client.send, b"early")  # the client's actor has not started
        await trio.testing.wait_all_tasks_blocked()
        assert client.info().chunks_sent == 0
        assert client.info().send_credit == 0  # the server's grant waits in the mailbox too
        await nursery.start(client.run)
        await trio.testing.wait_all_tasks_blocked()
        assert client.info().chunks_sent == 1
        assert await server.recv() == b"early"
        await client.close()
        await server.close()


# -- checkpoints and cancellation on either path ----------------------------------------------


@pytest.mark.parametrize("path", PATHS)
async def test_every_owner_call_is_a_checkpoint(
    path: str, monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    _use_path(monkeypatch, path)
    async with open_pair(mode=Mode.BIDI, encoding=Encoding.RAW) as (client, server):
        with trio.testing.assert_checkpoints():
            await client.send(b"a")  # credit available: it never waits
        await trio.testing.wait_all_tasks_blocked()
        with trio.testing.assert_checkpoints():
            assert await server.recv() == b"a"  # a chunk buffered: it never waits
        with trio.testing.assert_checkpoints():
            await client.close_send()
        with trio.testing.assert_checkpoints():
            await client.close()


@pytest.mark.parametrize("path", PATHS)
async def test_a_send_cancelled_before_it_is_posted_never_happens(
    path: str, monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    _use_path(monkeypatch, path)
    async with open_pair(mode=Mode.BIDI, encoding=Encoding.RAW) as (client, server):
        before = client.info()
        with trio.CancelScope() as scope:
            scope.cancel()
            await client.send(b"never")
        assert scope.cancelled_caught
        await trio.testing.wait_all_tasks_blocked()
        assert client.info() == before
        assert server.info().chunks_received == 0
        await client.send(b"next")  # the stream is untouched and usable
        assert await server.recv() == b"next"


@pytest.mark.parametrize("path", PATHS)
async def test_a_recv_cancelled_before_it_is_posted_takes_no_chunk(
    path: str, monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    _use_path(monkeypatch, path)
    async with open_pair(mode=Mode.BIDI, encoding=Encoding.RAW) as (client, server):
        await client.send(b"kept")
        await trio.testing.wait_all_tasks_blocked()
        with trio.CancelScope() as scope:
            scope.cancel()
            await server.recv()
        assert scope.cancelled_caught
        assert server.info().buffered_chunks == 1
        assert await server.recv() == b"kept"


async def test_a_send_applied_at_once_is_not_undone_by_a_cancel_meanwhile(
    autojump_clock: trio.testing.MockClock,
) -> None:
    link = CancellingLink()
    async with open_stream(role=Role.CLIENT, mode=Mode.BIDI, encoding=Encoding.RAW) as stream:
        stream.link(link, window=1024, max_chunk_size=512)
        with trio.CancelScope() as scope:
            link.scope = scope
            await stream.send(b"sent")  # the link cancels the scope while the send is applied
            returned = True  # the send happened, so it returns; the next checkpoint raises
            await trio.lowlevel.checkpoint()
        assert returned and scope.cancelled_caught
        assert link.frames == [("chunk", b"sent")]
        assert stream.info().chunks_sent == 1


async def test_a_recv_applied_at_once_keeps_its_chunk_despite_a_cancel_meanwhile(
    autojump_clock: trio.testing.MockClock,
) -> None:
    link = CancellingLink()
    async with open_stream(
        role=Role.SERVER, mode=Mode.BIDI, encoding=Encoding.RAW, window=64, max_chunk_size=32
    ) as stream:
        stream.link(link, window=1024, max_chunk_size=512)
        stream.deliver_chunk(b"y" * 32)
        with trio.CancelScope() as scope:
            link.scope = scope
            # Taking it consumes half the window: the credit grant cancels the scope.
            chunk = await stream.recv()
            await trio.lowlevel.checkpoint()
        assert chunk == b"y" * 32 and scope.cancelled_caught
        assert link.frames == [("credit", 32)]


@pytest.mark.parametrize("path", PATHS)
async def test_a_parked_send_cancelled_is_withdrawn_and_later_sends_keep_order(
    path: str, monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    _use_path(monkeypatch, path)
    async with open_pair(mode=Mode.BIDI, encoding=Encoding.RAW, window=64, max_chunk_size=32) as (
        client,
        server,
    ):
        await client.send(b"1" * 32)
        await client.send(b"2" * 32)
        with trio.move_on_after(1) as scope:
            await client.send(b"withdrawn")  # no credit left: it parks, then is cancelled
        assert scope.cancelled_caught
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.send, b"3")
            got = [await server.recv() for _ in range(3)]
        assert got == [b"1" * 32, b"2" * 32, b"3"]


@pytest.mark.parametrize("path", PATHS)
async def test_a_cancelled_close_still_closes(
    path: str, monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    _use_path(monkeypatch, path)
    async with open_pair(mode=Mode.BIDI, encoding=Encoding.RAW) as (client, server):
        with trio.CancelScope() as scope:
            scope.cancel()
            await client.close()
        await trio.testing.wait_all_tasks_blocked()
        assert client.info().finished
        with pytest.raises(trio.EndOfChannel):
            await server.recv()


# -- the same program on either path -----------------------------------------------------------


def _load_pair_model() -> ModuleType:
    """The pair model's `Program`, loaded from its test module (tests are not a package)."""
    path = Path(__file__).with_name("test_pair_model.py")
    name = "_streamlet_pair_model_for_paths"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _transcript(mode: Mode, encoding: Encoding, actions: list[tuple[str, Role, int]]) -> list[Any]:
    """Run the program; after each action, the calls that ended and both streams' state."""
    model = _load_pair_model()
    steps: list[Any] = []

    class Recorded(model.Program):  # type: ignore[name-defined,misc]
        def check(self) -> None:
            super().check()
            ended = sorted(
                (name, r if isinstance(r, str) else f"{type(r).__name__}: {r}")
                for name, r in self.outcomes[self.seen :]
            )
            self.seen = len(self.outcomes)
            infos = [stream.info() for stream in self.streams.values()]
            received = {role: list(chunks) for role, chunks in self.received.items()}
            steps.append((ended, infos, received))

    program = Recorded(mode, encoding, actions)
    program.seen = 0
    trio.run(program.run, clock=trio.testing.MockClock(autojump_threshold=0))
    assert len(program.outcomes) == program.calls_started
    return steps


_CALL_NAMES = [
    "send",
    "recv",
    "close_send",
    "close",
    "abort",
    "reply",
    "reply_error",
    "await_reply",
    "cancel_pending",
    "owner_death",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mode=st.sampled_from(list(Mode)),
    encoding=st.sampled_from(list(Encoding)),
    program=st.lists(
        st.tuples(st.sampled_from(_CALL_NAMES), st.sampled_from(list(Role))), max_size=25
    ),
)
def test_inline_and_mailbox_paths_give_the_same_outcomes_and_states(
    mode: Mode, encoding: Encoding, program: list[tuple[str, Role]]
) -> None:
    actions = [(name, role, i) for i, (name, role) in enumerate(program)]
    inline = _transcript(mode, encoding, actions)
    original = Stream._apply_inline
    Stream._apply_inline = False
    try:
        mailbox = _transcript(mode, encoding, actions)
    finally:
        Stream._apply_inline = original
    assert inline == mailbox
