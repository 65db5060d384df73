"""The demo router and a scripted tour of the four call modes.

`streamlet demo` runs it: each step prints what it sends and receives and
checks the outcome it expects, so the command doubles as a smoke test.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import trio
from streamlet.codec.modes import Mode
from streamlet.codec.status import StatusCode, StreamError

from .dispatch import ServerStream
from .router import Router


class Opener(Protocol):
    """How the tour reaches the router: in-process, or over a connection."""

    def __call__(
        self, method: str, *, mode: Mode | str, deadline: float | None = None
    ) -> AbstractAsyncContextManager[Any]: ...


demo_router = Router()


@demo_router.unary("add")
async def add(request: Mapping[str, int]) -> int:
    """One request in, one reply out."""
    return request["a"] + request["b"]


@demo_router.server_stream("ticks")
async def ticks(request: Mapping[str, int], stream: ServerStream) -> None:
    """One request in, `n` chunks out."""
    for i in range(request["n"]):
        await stream.send({"i": i})


@demo_router.client_stream("total")
async def total(stream: ServerStream) -> int:
    """Many chunks in, their sum out."""
    return sum([chunk async for chunk in stream])


@demo_router.bidi("echo")
async def echo(stream: ServerStream) -> None:
    """Every chunk straight back."""
    async for chunk in stream:
        await stream.send(chunk)


@demo_router.unary("sleepy")
async def sleepy(request: float) -> str:
    """Sleeps longer than the caller's deadline allows."""
    await trio.sleep(request)
    return "woke up"


class DemoFailed(Exception):
    """A step of the tour did not behave as expected."""


def _expect(what: str, got: object, want: object) -> None:
    if got != want:
        raise DemoFailed(f"{what}: expected {want!r}, got {got!r}")


async def run_tour(open_stream: Opener, say: Callable[[str], None]) -> None:
    """Run each mode once, an abort and a deadline; raise `DemoFailed` on a surprise."""
    say("unary add {a: 2, b: 40}")
    async with open_stream("add", mode="unary") as s:
        await s.send({"a": 2, "b": 40})
        reply = await s.await_reply()
    say(f"  reply {reply}")
    _expect("add", reply, 42)

    say("server_stream ticks {n: 3}")
    async with open_stream("ticks", mode="server_stream") as s:
        await s.send({"n": 3})
        got = []
        async for chunk in s:
            say(f"  chunk {chunk}")
            got.append(chunk)
    say("  end")
    _expect("ticks", got, [{"i": 0}, {"i": 1}, {"i": 2}])

    say("client_stream total 1..10")
    async with open_stream("total", mode="client_stream") as s:
        for i in range(1, 11):
            await s.send(i)
        await s.close_send()
        reply = await s.await_reply()
    say(f"  reply {reply}")
    _expect("total", reply, 55)

    say("bidi echo, then abort mid-stream")
    async with open_stream("echo", mode="bidi") as s:
        for word in ("ping", "pong"):
            await s.send(word)
            echoed = await s.recv()
            say(f"  sent {word!r}, echoed {echoed!r}")
            _expect("echo", echoed, word)
        await s.abort(StatusCode.CANCELLED, "demo aborts the call")
        try:
            await s.recv()
        except StreamError as exc:
            say(f"  after abort: {exc}")
            _expect("abort status", exc.code, StatusCode.CANCELLED)
        else:
            raise DemoFailed("recv after abort returned a chunk")

    say("unary sleepy 5 s with a 0.2 s deadline")
    async with open_stream("sleepy", mode="unary", deadline=0.2) as s:
        await s.send(5.0)
        try:
            await s.await_reply()
        except StreamError as exc:
            say(f"  {exc}")
            _expect("deadline status", exc.code, StatusCode.DEADLINE_EXCEEDED)
        else:
            raise DemoFailed("the deadline did not fire")
