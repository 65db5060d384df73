"""Flow control and fairness across the carrier: bounded memory, fair interleaving, many streams.

A slow consumer must never make anything grow past its window (plus a frame);
a huge chunk on one stream must not delay a small one on another; a thousand
streams share one connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import pytest
import trio
import trio.testing
from streamlet.codec import (
    HEADER_SIZE,
    CreditPayload,
    Flags,
    Frame,
    FrameDecoder,
    FrameEncoder,
    FrameKind,
    Side,
)
from streamlet.runtime.carrier import Carrier
from streamlet.runtime.endpoints import connect_tcp, serve_tcp
from streamlet.runtime.outbound import Outbound
from streamlet.runtime.router import Router
from streamlet.runtime.settings import ConnectionSettings

WINDOW = 16 * 1024
CHUNK = 4 * 1024
FRAME = 16 * 1024
SMALL = ConnectionSettings(
    initial_window=WINDOW, max_chunk_size=CHUNK, max_frame_size=FRAME, ping_interval=None
)


class SlowStream(trio.abc.Stream):
    """A byte stream whose every `send_all` takes a while, like a congested link."""

    def __init__(self, inner: trio.abc.Stream, delay: float) -> None:
        self.inner = inner
        self.delay = delay

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await trio.sleep(self.delay)
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()


@asynccontextmanager
async def running_pair(
    router: Router, settings: ConnectionSettings, *, server_send_delay: float = 0
) -> AsyncIterator[tuple[Carrier, Carrier]]:
    """A client carrier and a serving carrier over a memory pair, both past the handshake."""
    client_end, server_end = trio.testing.memory_stream_pair()
    client = Carrier(client_end, side=Side.CONNECTOR, settings=settings)
    transport = SlowStream(server_end, server_send_delay) if server_send_delay else server_end
    server = Carrier(transport, side=Side.ACCEPTOR, router=router, settings=settings)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.run)
        await nursery.start(client.run)
        yield client, server
        await client.shutdown()


async def test_slow_consumer_keeps_memory_within_the_window(
    autojump_clock: trio.testing.MockClock,
) -> None:
    router = Router()
    producer_peaks: list[int] = []
    total = 100 * WINDOW // CHUNK  # 100 windows' worth of chunks

    @router.server_stream("flood")
    async def flood(request: bytes, stream: Any) -> None:
        for i in range(int(request)):
            await stream.send(bytes([i % 256]) * CHUNK)
            producer_peaks.append(stream.info().buffered_bytes)

    peaks = {"client_buffer": 0, "server_queue": 0, "client_queue": 0, "decoder": 0}
    received = 0

    async def watch_server_queue(server: Carrier) -> None:
        while True:
            peaks["server_queue"] = max(peaks["server_queue"], server.info().queued_bytes)
            await trio.sleep(0.001)

    with trio.fail_after(10_000):
        async with (
            running_pair(router, SMALL, server_send_delay=0.05) as (client, server),
            client.open_stream("flood", mode="server_stream", encoding="raw") as stream,
            trio.open_nursery() as watchers,
        ):
            watchers.start_soon(watch_server_queue, server)
            await stream.send(str(total).encode())
            async for chunk in stream:
                assert len(chunk) == CHUNK
                received += 1
                await trio.sleep(0.01)  # the slow consumer
                info = stream.info()
                assert info.recv_credit >= 0
                peaks["client_buffer"] = max(peaks["client_buffer"], info.buffered_bytes)
                peaks["client_queue"] = max(peaks["client_queue"], client.info().queued_bytes)
                peaks["decoder"] = max(peaks["decoder"], client._decoder.buffered_size)
            watchers.cancel_scope.cancel()
    assert received == total
    assert peaks["client_buffer"] <= WINDOW
    assert 0 < peaks["server_queue"] <= WINDOW + FRAME
    assert peaks["client_queue"] == 0  # the client sent one request chunk, then only credit
    assert peaks["decoder"] <= FRAME
    assert max(producer_peaks) == 0  # the producer never buffers what it sends


def frames_in(data: bytes | bytearray, side: Side = Side.ACCEPTOR) -> list[Frame]:
    decoder = FrameDecoder(side, 16 * 1024 * 1024)
    decoder.receive_data(data)
    return list(decoder)


def test_writer_interleaves_a_small_chunk_with_a_huge_one() -> None:
    outbound = Outbound(FrameEncoder(Side.CONNECTOR, FRAME))
    huge = outbound.link(1, WINDOW)
    small = outbound.link(3, WINDOW)
    huge.deliver_chunk(b"h" * (100 * FRAME))
    first = bytearray()
    outbound.fill(first, limit=1)  # one frame: a fragment of the huge chunk
    small.deliver_chunk(b"small")
    second = bytearray()
    outbound.fill(second, limit=3 * FRAME)
    frames = frames_in(first) + frames_in(second)
    assert [(f.stream_id, f.flags) for f in frames[:4]] == [
        (1, Flags.MORE_FRAMES),
        (1, Flags.MORE_FRAMES),
        (3, Flags.NONE),  # the small chunk goes on the next turn, not after 100 fragments
        (1, Flags.MORE_FRAMES),
    ]
    assert bytes(frames[2].payload) == b"small"


def test_writer_sends_control_and_credit_before_stream_frames() -> None:
    outbound = Outbound(FrameEncoder(Side.CONNECTOR, FRAME))
    link = outbound.link(1, WINDOW)
    link.deliver_chunk(b"x" * (3 * FRAME))
    link.grant_credit(100)
    link.grant_credit(23)  # coalesced with the first
    outbound.queue_control(Frame(FrameKind.PING, Flags.NONE, 0, b"12345678"))
    out = bytearray()
    outbound.fill(out, limit=2 * FRAME)
    frames = frames_in(out)
    assert [f.kind for f in frames[:3]] == [
        FrameKind.PING,
        FrameKind.STREAM_CREDIT,
        FrameKind.STREAM_CHUNK,
    ]
    assert CreditPayload.decode(frames[1].payload).increment == 123
    assert link.recv_credit == WINDOW + 123


def test_writer_queue_counts_chunk_bytes_until_written() -> None:
    outbound = Outbound(FrameEncoder(Side.CONNECTOR, FRAME))
    link = outbound.link(1, WINDOW)
    link.deliver_chunk(b"x" * (2 * FRAME))
    assert outbound.queued_bytes == 2 * FRAME
    out = bytearray()
    outbound.fill(out, limit=1)
    assert outbound.queued_bytes == 2 * FRAME - (FRAME - HEADER_SIZE)
    outbound.fill(out, limit=10 * FRAME)
    assert outbound.queued_bytes == 0
    assert not outbound.has_work
    joined = b"".join(bytes(f.payload) for f in frames_in(out))
    assert joined == b"x" * (2 * FRAME)


def test_end_after_a_queued_chunk_rides_as_fin_on_it() -> None:
    outbound = Outbound(FrameEncoder(Side.CONNECTOR, FRAME))
    link = outbound.link(1, WINDOW)
    link.deliver_chunk(b"last")
    link.deliver_end()
    out = bytearray()
    outbound.fill(out, limit=FRAME)
    frames = frames_in(out)
    assert [(f.kind, f.flags) for f in frames] == [(FrameKind.STREAM_CHUNK, Flags.FIN)]


async def test_huge_chunk_does_not_delay_a_small_call_on_another_stream() -> None:
    size = 32 * 1024 * 1024
    big = ConnectionSettings(initial_window=size, max_chunk_size=size, ping_interval=None)
    router = Router()
    order: list[str] = []

    @router.client_stream("sink")
    async def sink(stream: Any) -> bytes:
        return str(sum([len(chunk) async for chunk in stream])).encode()

    @router.unary("quick")
    async def quick(request: int) -> int:
        return request + 1

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            serve = partial(serve_tcp, host="127.0.0.1", settings=big)
            listeners = await nursery.start(serve, router, 0)
            port = listeners[0].socket.getsockname()[1]
            async with connect_tcp("127.0.0.1", port, settings=big) as peer:

                async def huge() -> None:
                    reply = await peer.call_client_stream("sink", [b"\0" * size], encoding="raw")
                    assert reply == str(size).encode()
                    order.append("huge")

                async def small() -> None:
                    # Until the huge chunk is on its way: a counter, no event to wait on.
                    while not peer.info().queued_bytes and not order:
                        await trio.lowlevel.checkpoint()
                    assert await peer.call_unary("quick", 1) == 2
                    order.append("small")

                async with trio.open_nursery() as calls:
                    calls.start_soon(huge)
                    calls.start_soon(small)
            nursery.cancel_scope.cancel()
    assert order == ["small", "huge"]


@pytest.mark.parametrize("count", [1000])
async def test_a_thousand_concurrent_streams_on_one_connection(count: int) -> None:
    router = Router()

    @router.bidi("echo")
    async def echo(stream: Any) -> None:
        async for chunk in stream:
            await stream.send(chunk)

    many = ConnectionSettings(max_streams=count, ping_interval=None)
    arrived = 0
    all_open = trio.Event()
    peak_served = 0
    with trio.fail_after(60):
        async with running_pair(router, many) as (client, server):

            async def call(i: int) -> None:
                nonlocal arrived, peak_served
                async with client.open_stream("echo", mode="bidi") as stream:
                    await stream.send(i)
                    assert await stream.recv() == i
                    arrived += 1
                    if arrived == count:
                        peak_served = server.info().served_streams
                        all_open.set()
                    await all_open.wait()
                    await stream.close_send()
                    assert [chunk async for chunk in stream] == []

            async with trio.open_nursery() as nursery:
                for i in range(count):
                    nursery.start_soon(call, i)
            await trio.testing.wait_all_tasks_blocked()
            assert client.info().streams == 0
            assert server.info().streams == 0
    assert peak_served == count
