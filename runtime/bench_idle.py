"""The idle-streams benchmark: what 10,000 open, idle streams on one connection cost.

Memory is measured with tracemalloc around opening them, while all are open:
both ends of every stream live in this process (the client's actor, the
server's actor and its handler task, each side's carrier entries), so the
figure per stream is the cost of both ends together. The baseline is one bare
trio task parked on a memory channel of its own per stream. The time to open
them all (until every handler runs) is the second figure.
"""

from __future__ import annotations

import contextlib
import gc
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any, Final

import trio
from streamlet.actors import Stream

from .bench_cases import loopback_peer
from .bench_model import Benchmark, Better, Reading, Sample, Size, Target
from .router import Router
from .settings import ConnectionSettings


def idle_settings(streams: int) -> ConnectionSettings:
    """The idle-streams case: the default window, and room for `streams` concurrent streams."""
    return ConnectionSettings(max_streams=streams)


# -- many idle streams on one connection -------------------------------------------------


def _memory_and_time(open_all: Callable[[], Awaitable[None]], count: int) -> Awaitable[Sample]:
    """Bytes per item (tracemalloc) and µs per item of `open_all`, which opens `count` items."""

    async def measured() -> Sample:
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            start = time.perf_counter()
            await open_all()
            seconds = time.perf_counter() - start
            after = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        per_item = (after - before) / count
        return Sample(per_item, (Reading("open", seconds / count * 1e6, "µs each", Better.LOWER),))

    return measured()


async def _idle_streams(count: int) -> Sample:
    """Open `count` idle bidi streams on one connection; measure them while all are open."""
    all_open = trio.Event()
    served = 0
    router = Router()

    @router.bidi("park")
    async def park(stream: Stream) -> None:
        nonlocal served
        served += 1
        if served == count:
            all_open.set()
        async for chunk in stream:
            del chunk

    async with (
        loopback_peer(router, idle_settings(count)) as peer,
        contextlib.AsyncExitStack() as streams,
    ):

        async def open_all() -> None:
            for _ in range(count):
                await streams.enter_async_context(
                    peer.open_stream("park", mode="bidi", encoding="raw")
                )
            await all_open.wait()

        sample = await _memory_and_time(open_all, count)
    return sample


def idle_streams(size: Size) -> Sample:
    """Bytes per idle stream (both ends, one process) and µs to open each, one connection."""
    return trio.run(_idle_streams, size.items)


async def _parked_tasks(count: int) -> Sample:
    """`count` trio tasks, each parked on a memory channel of its own."""
    all_parked = trio.Event()
    parked = 0
    senders: list[trio.MemorySendChannel[Any]] = []

    async def park(receiver: trio.MemoryReceiveChannel[Any]) -> None:
        nonlocal parked
        parked += 1
        if parked == count:
            all_parked.set()
        async with receiver:
            async for item in receiver:
                del item

    async with trio.open_nursery() as nursery:

        async def open_all() -> None:
            for _ in range(count):
                sender, receiver = trio.open_memory_channel[Any](0)
                senders.append(sender)
                nursery.start_soon(park, receiver)
            await all_parked.wait()

        sample = await _memory_and_time(open_all, count)
        for sender in senders:
            sender.close()
    return sample


def parked_tasks(size: Size) -> Sample:
    """Baseline: bytes per trio task parked on its own memory channel, and µs to start each."""
    return trio.run(_parked_tasks, size.items)


CASES: Final = (
    Benchmark(
        name="tcp_idle_streams",
        description="10,000 idle bidi streams on one loopback TCP connection: bytes per stream "
        "(both ends, one process), vs one trio task parked on a memory channel per stream",
        unit="B/stream",
        subject=idle_streams,
        baseline_name="parked trio task",
        baseline=parked_tasks,
        target=Target(figure=8 * 1024),
        better=Better.LOWER,
        full=Size(items=10_000, repeats=2),
        quick=Size(items=200, repeats=1),
        limit="two actors and a handler task: machines ~6 KiB, trio tasks and scopes ~9 KiB",
        settings="ConnectionSettings(max_streams=stream count, 10,000) both sides, default window",
    ),
)
