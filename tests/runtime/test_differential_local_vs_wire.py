"""Differential test: a random call scenario gives the same outcomes in-process and over the wire.

`open_local` (a local pair, no carrier) and `open_memory_connection` (the whole
wire path: codec, carrier, credit frames) must be indistinguishable to the
client, so handlers tested in-process behave the same in production.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import attrs
import trio
import trio.testing
from hypothesis import event, given, settings
from hypothesis import strategies as st
from streamlet.actors import Stream, StreamStateError
from streamlet.codec.status import StatusCode, StreamError
from streamlet.runtime.dispatch import ServerStream
from streamlet.runtime.endpoints import open_memory_connection
from streamlet.runtime.local import open_local
from streamlet.runtime.router import Router

router = Router()


@router.unary("inc")
async def inc(request: int) -> int:
    if request == 13:
        raise StreamError(StatusCode.OUT_OF_RANGE, "13 is unlucky", {"got": 13})
    if request == 7:
        raise ValueError("seven is not allowed")
    return request + 1


@router.server_stream("count")
async def count(request: int, stream: ServerStream) -> None:
    for i in range(request):
        if i == 5:
            raise StreamError(StatusCode.ABORTED, "gave up at 5")
        await stream.send(i)


@router.client_stream("total")
async def total(stream: ServerStream) -> int:
    result = 0
    async for chunk in stream:
        if chunk == 13:
            raise StreamError(StatusCode.INVALID_ARGUMENT, "no 13s", {"after": result})
        result += chunk
    return result


@router.bidi("echo")
async def echo(stream: ServerStream) -> int | None:
    seen = 0
    async for chunk in stream:
        if chunk == 13:
            raise RuntimeError("echo broke on 13")
        seen += 1
        await stream.send(chunk * 2)
    return seen if seen % 2 else None  # odd counts end with a reply, even ones with END


values = st.one_of(st.integers(min_value=0, max_value=15), st.sampled_from([7, 13]))


@attrs.frozen
class Scenario:
    """One call: which method in which mode, and what the client does, in order."""

    method: str
    mode: str
    actions: tuple[tuple[str, Any], ...]


def _scenarios() -> st.SearchStrategy[Scenario]:
    unary = st.builds(
        lambda m, v: Scenario(m, "unary", (("send", v), ("await_reply", None))),
        st.sampled_from(["inc", "inc", "missing", "total"]),
        values,
    )
    server = st.builds(
        lambda v: Scenario("count", "server_stream", (("send", v), *[("recv", None)] * 8)),
        st.integers(min_value=0, max_value=7),
    )
    client = st.builds(
        lambda vs, tail: Scenario(
            "total", "client_stream", (*[("send", v) for v in vs], *tail, ("await_reply", None))
        ),
        st.lists(values, max_size=6),
        st.sampled_from([(("close_send", None),), (("abort", None),), ()]),
    )
    bidi_action = st.one_of(
        st.tuples(st.just("send"), values),
        st.tuples(st.sampled_from(["recv", "close_send", "abort"]), st.none()),
    )
    bidi = st.builds(
        lambda acts: Scenario("echo", "bidi", (*acts, ("close_send", None), ("drain", None))),
        st.lists(bidi_action, max_size=8),
    )
    return st.sampled_from([unary, server, client, bidi]).flatmap(lambda strategy: strategy)


def _outcome(exc: BaseException) -> tuple[Any, ...]:
    if isinstance(exc, StreamError):
        return ("error", exc.code.name, exc.message, dict(exc.details))
    if isinstance(exc, trio.EndOfChannel):
        return ("end",)
    if isinstance(exc, StreamStateError | trio.ClosedResourceError):
        return (type(exc).__name__,)
    raise exc


async def _act(stream: Stream, action: str, arg: Any) -> tuple[Any, ...]:
    try:
        with trio.move_on_after(5):  # virtual seconds: nothing due arrives as "waiting"
            if action == "send":
                await stream.send(arg)
                return ("sent",)
            if action == "recv":
                return ("chunk", await stream.recv())
            if action == "await_reply":
                return ("reply", await stream.await_reply())
            if action == "close_send":
                await stream.close_send()
                return ("closed",)
            if action == "abort":
                await stream.abort(StatusCode.CANCELLED, "client gave up")
                return ("aborted",)
            assert action == "drain"
            return ("drained", [chunk async for chunk in stream])
        return ("waiting",)
    except (StreamError, trio.EndOfChannel, StreamStateError, trio.ClosedResourceError) as exc:
        return _outcome(exc)


Opener = Callable[[str, str], AbstractAsyncContextManager[Stream]]


async def _run(open_stream: Opener, scenario: Scenario) -> list[tuple[Any, ...]]:
    results: list[tuple[Any, ...]] = []
    async with open_stream(scenario.method, scenario.mode) as stream:
        for action, arg in scenario.actions:
            results.append(await _act(stream, action, arg))
            # Under the MockClock this returns once every other task is blocked: the
            # scenario compares outcomes of a settled system, not the race to settle.
            await trio.sleep(0.001)
    return results


def _local(method: str, mode: str) -> AbstractAsyncContextManager[Stream]:
    return open_local(router, method, mode=mode)


async def _both(scenario: Scenario) -> tuple[list[Any], list[Any]]:
    local = await _run(_local, scenario)
    async with open_memory_connection(router) as peer:

        def wire(method: str, mode: str) -> AbstractAsyncContextManager[Stream]:
            return peer.open_stream(method, mode=mode)

        remote = await _run(wire, scenario)
    return local, remote


@settings(max_examples=400, deadline=None)
@given(_scenarios())
def test_local_and_wire_give_the_same_outcomes(scenario: Scenario) -> None:
    local, remote = trio.run(_both, scenario, clock=trio.testing.MockClock(autojump_threshold=0))
    assert local == remote
    assert len(local) == len(scenario.actions)
    for outcome in local:
        event(
            f"{scenario.mode}: {outcome[0]}" + (f" {outcome[1]}" if outcome[0] == "error" else "")
        )
