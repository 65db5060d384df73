"""The benchmark cases: streamlet in-process and over loopback TCP, each with its baseline.

Every case is a pair of `Measure` functions: the subject (streamlet) and a
baseline doing the same work with bare trio (a memory channel, a task, a
socket). Each measure is one `trio.run`: the connection or socket pair is set
up before the clock starts, so handshakes are never timed. TCP is loopback
only (127.0.0.1, a free port), both ends in this process and on one trio loop.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

import trio
from streamlet.actors import Stream, open_pair

from .bench_model import Benchmark, Better, Reading, Sample, Size, Target
from .endpoints import connect_tcp, serve_tcp
from .inbound import READ_SIZE
from .peer import Peer
from .router import Router
from .settings import ConnectionSettings

HOST: Final = "127.0.0.1"
CHUNK_SIZE: Final = 64
_CHUNK_BUFFER: Final = (1 << 20) // CHUNK_SIZE  # as many 64-byte chunks as the default window
MIB: Final = 1 << 20
MB: Final = 1_000_000  # MB/s is decimal megabytes a second
BIG_CHUNK: Final = MIB
PING_WARMUP: Final = 50  # round trips before the clock starts (first-use allocations)

# The 1 MiB case: a window of 8 chunks, so several are in flight at once, and chunks
# of 1 MiB allowed; the frame size stays the default (64 KiB fragments).
BULK_SETTINGS: Final = ConnectionSettings(initial_window=8 * MIB, max_chunk_size=MIB)
BULK_SETTINGS_TEXT: Final = (
    "ConnectionSettings(initial_window=8 MiB, max_chunk_size=1 MiB) both sides"
)


# -- shared pieces -----------------------------------------------------------------------


def chunks(count: int) -> list[bytes]:
    """Distinct 64-byte objects, made before the clock starts, shared by subject and baseline."""
    return [i.to_bytes(8, "big") * (CHUNK_SIZE // 8) for i in range(count)]


def _throughput(body: Callable[[list[bytes]], Awaitable[float]], size: Size) -> Sample:
    """Chunks per second for `trio.run(body, chunks)`; `body` returns the seconds it timed."""
    return Sample(size.items / trio.run(body, chunks(size.items)))


@contextlib.asynccontextmanager
async def loopback_peer(router: Router, settings: ConnectionSettings) -> AsyncIterator[Peer]:
    """Serve `router` on 127.0.0.1 (a free port) and yield a connected `Peer`; both ends here."""
    async with trio.open_nursery() as nursery:
        serve = functools.partial(serve_tcp, router, 0, host=HOST, settings=settings)
        listeners = await nursery.start(serve)
        port = listeners[0].socket.getsockname()[1]
        async with connect_tcp(HOST, port, settings=settings) as peer:
            yield peer
        nursery.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def socket_pair() -> AsyncIterator[tuple[trio.SocketStream, trio.SocketStream]]:
    """A connected loopback TCP pair of trio socket streams (TCP_NODELAY, as streamlet's)."""
    listeners = await trio.open_tcp_listeners(0, host=HOST)
    listener = listeners[0]
    try:
        port = listener.socket.getsockname()[1]
        client = await trio.open_tcp_stream(HOST, port)
        server = await listener.accept()
    finally:
        await listener.aclose()
    async with client, server:
        yield client, server


async def _receive_exactly(stream: trio.SocketStream, count: int) -> bytes:
    """Read exactly `count` bytes (a raw socket has no message boundaries)."""
    data = b""
    while len(data) < count:
        more = await stream.receive_some(count - len(data))
        if not more:
            raise trio.BrokenResourceError("the peer closed mid-message")
        data += more
    return data


# -- local pair vs a trio memory channel -------------------------------------------------


async def _memory_channel_body(items: list[bytes]) -> float:
    """A producer task sends the chunks into a memory channel, a consumer task takes them."""
    send_channel, receive_channel = trio.open_memory_channel[bytes](_CHUNK_BUFFER)

    async def produce() -> None:
        async with send_channel:
            for chunk in items:
                await send_channel.send(chunk)

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(produce)
        async with receive_channel:
            async for chunk in receive_channel:
                del chunk
    return time.perf_counter() - start


async def _local_pair_body(items: list[bytes]) -> float:
    """A bidi raw pair: the client task sends the chunks, the server task receives them."""
    start = time.perf_counter()
    async with open_pair(mode="bidi", encoding="raw") as (client, server):

        async def produce() -> None:
            for chunk in items:
                await client.send(chunk)
            await client.close_send()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(produce)
            async for chunk in server:
                del chunk
    return time.perf_counter() - start


def memory_channel_chunks(size: Size) -> Sample:
    """Baseline: chunks/s through a bare trio memory channel, producer task to consumer task."""
    return _throughput(_memory_channel_body, size)


def local_pair_chunks(size: Size) -> Sample:
    """Chunks/s from a local pair's client to its server, one direction."""
    return _throughput(_local_pair_body, size)


# -- server_stream over loopback TCP -----------------------------------------------------


def _ticks_router(items: list[bytes]) -> Router:
    """A router whose raw server_stream `ticks` sends `items`, whatever the request."""
    router = Router()

    @router.server_stream("ticks")
    async def ticks(request: bytes, stream: Stream) -> None:
        for chunk in items:
            await stream.send(chunk)

    return router


async def _tcp_ticks(items: list[bytes], settings: ConnectionSettings) -> float:
    """Seconds from opening a raw server_stream to its last chunk received, over TCP."""
    async with loopback_peer(_ticks_router(items), settings) as peer:
        start = time.perf_counter()
        async with peer.open_stream("ticks", mode="server_stream", encoding="raw") as stream:
            await stream.send(b"go")
            received = 0
            async for chunk in stream:
                received += 1
                del chunk
        seconds = time.perf_counter() - start
    if received != len(items):
        raise RuntimeError(f"ticks: {received} chunks received of {len(items)}")
    return seconds


def tcp_chunks(size: Size) -> Sample:
    """Chunks/s of 64 bytes, server to client on one raw server_stream over loopback TCP."""
    seconds = trio.run(_tcp_ticks, chunks(size.items), ConnectionSettings())
    return Sample(size.items / seconds)


# -- 1 MiB chunks over loopback TCP, vs the same bytes through a raw socket --------------


def _big_chunk() -> bytes:
    """One 1 MiB chunk, sent `size.items` times (the bytes on the wire are what count)."""
    return bytes(range(256)) * (BIG_CHUNK // 256)


def tcp_bulk(size: Size) -> Sample:
    """MB/s of 1 MiB raw chunks on one server_stream over loopback TCP (BULK_SETTINGS)."""
    items = [_big_chunk()] * size.items
    seconds = trio.run(_tcp_ticks, items, BULK_SETTINGS)
    return Sample(size.items * BIG_CHUNK / MB / seconds)


async def _socket_bulk(items: list[bytes]) -> float:
    total = sum(len(chunk) for chunk in items)
    async with socket_pair() as (client, server):

        async def produce() -> None:
            for chunk in items:
                await server.send_all(chunk)

        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(produce)
            received = 0
            while received < total:
                data = await client.receive_some(READ_SIZE)
                if not data:
                    raise RuntimeError("the socket closed early")
                received += len(data)
        return time.perf_counter() - start


def socket_bulk(size: Size) -> Sample:
    """Baseline: MB/s of the same bytes, `send_all` per 1 MiB to `receive_some`, raw socket.

    It reads `READ_SIZE` bytes at a time, as the carrier's reader does (that is
    faster than trio's default 64 KiB, so the baseline is no weaker than it could be).
    """
    items = [_big_chunk()] * size.items
    seconds = trio.run(_socket_bulk, items)
    return Sample(size.items * BIG_CHUNK / MB / seconds)


# -- ping-pong over loopback TCP ---------------------------------------------------------


def latency_sample(latencies: list[float], seconds: float) -> Sample:
    """p50 (the main figure), p99 and the rate of round trips timed one by one."""
    ordered = sorted(latencies)
    p50 = ordered[len(ordered) // 2] * 1e6
    p99 = ordered[min(len(ordered) - 1, len(ordered) * 99 // 100)] * 1e6
    rate = len(ordered) / seconds
    return Sample(
        p50,
        (
            Reading("p99", p99, "µs", Better.LOWER),
            Reading("rate", rate, "round trips/s", Better.HIGHER),
        ),
    )


def _echo_router() -> Router:
    router = Router()

    @router.bidi("echo")
    async def echo(stream: Stream) -> None:
        async for chunk in stream:
            await stream.send(chunk)

    return router


async def _tcp_ping_pong(count: int) -> Sample:
    chunk = chunks(1)[0]
    latencies: list[float] = []
    async with (
        loopback_peer(_echo_router(), ConnectionSettings()) as peer,
        peer.open_stream("echo", mode="bidi", encoding="raw") as stream,
    ):
        for _ in range(PING_WARMUP):
            await stream.send(chunk)
            await stream.recv()
        start = time.perf_counter()
        for _ in range(count):
            sent = time.perf_counter()
            await stream.send(chunk)
            await stream.recv()
            latencies.append(time.perf_counter() - sent)
        seconds = time.perf_counter() - start
        await stream.close_send()
    return latency_sample(latencies, seconds)


def tcp_ping_pong(size: Size) -> Sample:
    """One bidi raw stream over loopback TCP: send 64 bytes, await the echo; p50 in µs."""
    return trio.run(_tcp_ping_pong, size.items)


async def _socket_ping_pong(count: int) -> Sample:
    chunk = chunks(1)[0]
    latencies: list[float] = []
    async with socket_pair() as (client, server):

        async def echo() -> None:
            while True:
                data = await server.receive_some(CHUNK_SIZE)
                if not data:
                    return
                await server.send_all(data)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(echo)
            for _ in range(PING_WARMUP):
                await client.send_all(chunk)
                await _receive_exactly(client, CHUNK_SIZE)
            start = time.perf_counter()
            for _ in range(count):
                sent = time.perf_counter()
                await client.send_all(chunk)
                await _receive_exactly(client, CHUNK_SIZE)
                latencies.append(time.perf_counter() - sent)
            seconds = time.perf_counter() - start
            await client.send_eof()
    return latency_sample(latencies, seconds)


def socket_ping_pong(size: Size) -> Sample:
    """Baseline: the same 64-byte ping-pong through a raw trio socket pair; p50 in µs."""
    return trio.run(_socket_ping_pong, size.items)


CASES: Final = (
    Benchmark(
        name="local_pair_64b",
        description="local bidi raw pair, 64-byte chunks one way, vs a trio memory channel",
        unit="chunks/s",
        subject=local_pair_chunks,
        baseline_name="trio memory channel",
        baseline=memory_channel_chunks,
        target=Target(ratio=0.5),
        better=Better.HIGHER,
        full=Size(items=100_000, repeats=5),
        quick=Size(items=2_000, repeats=2),
        limit="per-chunk Python work in the two actors (send, credit, recv)",
    ),
    Benchmark(
        name="tcp_64b",
        description="raw server_stream over loopback TCP, 64-byte chunks one way, vs a local pair",
        unit="chunks/s",
        subject=tcp_chunks,
        baseline_name="local pair",
        baseline=local_pair_chunks,
        target=Target(ratio=0.5),
        better=Better.HIGHER,
        full=Size(items=100_000, repeats=5),
        quick=Size(items=2_000, repeats=2),
        limit="per-frame Python work: encode, decode, route, and two actors",
        settings="ConnectionSettings() defaults both sides",
    ),
    Benchmark(
        name="tcp_1mib",
        description="raw server_stream over loopback TCP, 1 MiB chunks, vs a raw trio socket",
        unit="MB/s",
        subject=tcp_bulk,
        baseline_name="raw trio socket",
        baseline=socket_bulk,
        target=Target(ratio=0.7),
        better=Better.HIGHER,
        full=Size(items=256, repeats=5),
        quick=Size(items=8, repeats=2),
        limit="decoding a frame per 64 KiB, and 4 copies of each byte in user space",
        settings=BULK_SETTINGS_TEXT,
    ),
    Benchmark(
        name="tcp_ping_pong",
        description="bidi raw 64-byte ping-pong over loopback TCP (p50), vs a raw trio socket",
        unit="µs p50",
        subject=tcp_ping_pong,
        baseline_name="raw trio socket",
        baseline=socket_ping_pong,
        target=Target(ratio=2.0),
        better=Better.LOWER,
        full=Size(items=5_000, repeats=5),
        quick=Size(items=200, repeats=2),
        limit="~11 trio task steps a round trip (reader, actor, handler, writer on each side)",
        settings="ConnectionSettings() defaults both sides",
    ),
)
