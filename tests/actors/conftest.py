"""Shared helpers for the actor tests: a mock clock, a recording outbox, paired machines.

The tests of real streams (the `test_actor_*` modules) run twice, once per
message path: `inline` (messages to an idle stream are applied in the posting
task, the default) and `mailbox` (every message waits for the actor task, as
if the stream were never idle). Both paths must pass the same tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio
import trio.testing
from streamlet.actors import Stream
from streamlet.actors.machine import StreamMachine
from streamlet.actors.table import Role
from streamlet.codec.chunks import Encoding
from streamlet.codec.modes import Mode
from streamlet.codec.status import StreamError

ALL_MODES = list(Mode)
ALL_ENCODINGS = list(Encoding)
MESSAGE_PATHS = ["inline", "mailbox"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test of real streams through both message paths."""
    if metafunc.module.__name__.rpartition(".")[2].startswith("test_actor_"):
        metafunc.parametrize("message_path", MESSAGE_PATHS, indirect=True)


@pytest.fixture(autouse=True)
def message_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """`inline` unless parametrized: with `mailbox`, streams apply no message inline."""
    path: str = getattr(request, "param", "inline")
    if path == "mailbox":
        monkeypatch.setattr(Stream, "_apply_inline", False)
    return path


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    """Waits cost no real time; a hang shows up as a `fail_after` failure."""
    return trio.testing.MockClock(autojump_threshold=0)


def _sample(encoding: Encoding, i: int) -> Any:
    """A chunk value that fits the encoding."""
    return bytes([i % 256]) * (i % 5 + 1) if encoding is Encoding.RAW else {"i": i}


class Caller:
    """A parked owner call in the pure-machine tests."""

    def __init__(self, name: str = "caller") -> None:
        self.name = name
        self.cancelled = False
        self.outcomes: list[tuple[str, Any]] = []

    def __repr__(self) -> str:
        return f"Caller({self.name})"


class RecordingOutbox:
    """An `Outbox` that records peer deliveries and answers callers with tuples."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    def emit_chunk(self, payload: bytes) -> None:
        self.sent.append(("chunk", payload))

    def emit_end(self) -> None:
        self.sent.append(("end", None))

    def emit_reply(self, payload: bytes) -> None:
        self.sent.append(("reply", payload))

    def emit_error(self, error: StreamError) -> None:
        self.sent.append(("error", error))

    def emit_credit(self, increment: int) -> None:
        self.sent.append(("credit", increment))

    def is_waiting(self, caller: object) -> bool:
        return isinstance(caller, Caller) and not caller.cancelled and not caller.outcomes

    def _answer(self, caller: object, kind: str, value: Any) -> bool:
        assert isinstance(caller, Caller)
        if caller.cancelled:
            return False
        caller.outcomes.append((kind, value))
        return True

    def resolve(self, caller: object, value: bytes | None) -> bool:
        return self._answer(caller, "value", value)

    def end(self, caller: object) -> bool:
        return self._answer(caller, "end", None)

    def interrupt(self, caller: object) -> bool:
        return self._answer(caller, "closed", None)

    def fail(self, caller: object, error: BaseException) -> bool:
        return self._answer(caller, "error", error)

    def take(self) -> list[tuple[str, Any]]:
        sent, self.sent = self.sent, []
        return sent


def _make_machine(
    mode: Mode,
    role: Role,
    *,
    window: int = 1024,
    max_chunk_size: int | None = None,
    credit: int = 1024,
) -> tuple[StreamMachine, RecordingOutbox]:
    """A machine with a recording outbox and `credit` bytes of send credit."""
    out = RecordingOutbox()
    machine = StreamMachine(
        id=7,
        role=role,
        mode=mode,
        outbox=out,
        window=window,
        max_chunk_size=window // 2 if max_chunk_size is None else max_chunk_size,
    )
    machine.send_credit = credit
    return machine, out


MachineFactory = Callable[..., tuple[StreamMachine, RecordingOutbox]]


@pytest.fixture
def make_machine() -> MachineFactory:
    """`make_machine(mode, role, window=, max_chunk_size=, credit=)` -> (machine, outbox)."""
    return _make_machine


@pytest.fixture
def new_caller() -> type[Caller]:
    """`new_caller(name)`: a token for a parked owner call, recording its outcomes."""
    return Caller


@pytest.fixture
def sample() -> Callable[[Encoding, int], Any]:
    """`sample(encoding, i)`: the i-th chunk value for that encoding."""
    return _sample
