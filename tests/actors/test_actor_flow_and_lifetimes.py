"""Credit flow control through the actor, linking to any PeerLink, and stream lifetimes."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from streamlet.actors import (
    MIN_CHUNK_CHARGE,
    Role,
    SendState,
    Stream,
    StreamState,
    chunk_charge,
    open_pair,
    open_stream,
    pair,
)
from streamlet.codec.chunks import Encoding
from streamlet.codec.modes import Mode
from streamlet.codec.status import StatusCode, StreamError


class RecordingLink:
    """A PeerLink standing in for a remote carrier: records what would become frames."""

    def __init__(self) -> None:
        self.frames: list[tuple[str, Any]] = []

    def deliver_chunk(self, payload: bytes) -> None:
        self.frames.append(("chunk", payload))

    def deliver_end(self) -> None:
        self.frames.append(("end", None))

    def deliver_error(self, error: StreamError) -> None:
        self.frames.append(("error", error))

    def deliver_reply(self, payload: bytes) -> None:
        self.frames.append(("reply", payload))

    def grant_credit(self, increment: int) -> None:
        self.frames.append(("credit", increment))


async def test_send_waits_while_the_peer_window_is_spent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_pair(mode=Mode.BIDI, encoding=Encoding.RAW, window=256, max_chunk_size=64) as (
        client,
        server,
    ):
        for _ in range(4):
            await client.send(b"x" * 64)
        assert client.info().send_credit == 0
        with trio.move_on_after(5) as scope:
            await client.send(b"y" * 64)
        assert scope.cancelled_caught  # waited for credit, then was withdrawn
        assert server.info().buffered_chunks == 4
        assert server.info().buffered_bytes <= 256
        for _ in range(2):
            await server.recv()  # half the window consumed: credit goes back
        await trio.testing.wait_all_tasks_blocked()
        assert client.info().send_credit == 128
        await client.send(b"z" * 64)


async def test_no_deadlock_when_sender_waits_and_receiver_drained(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Chunks as large as the window: only the drained-buffer rule returns credit in time.
    async with open_pair(
        mode=Mode.BIDI, encoding=Encoding.RAW, window=1000, max_chunk_size=1000
    ) as (
        client,
        server,
    ):
        sizes = [10, 1000, 1, 999, 500, 501, 0, 1000]

        async def receive() -> None:
            for size in sizes:
                assert len(await server.recv()) == size

        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(receive)
                for size in sizes:
                    await client.send(b"q" * size)


async def test_flood_of_empty_chunks_is_bounded_by_the_window(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_pair(mode=Mode.BIDI, encoding=Encoding.RAW, window=160, max_chunk_size=80) as (
        client,
        server,
    ):
        for _ in range(160 // MIN_CHUNK_CHARGE):
            await client.send(b"")
        with trio.move_on_after(1) as scope:
            await client.send(b"")
        assert scope.cancelled_caught
        assert server.info().buffered_chunks == 160 // MIN_CHUNK_CHARGE


async def test_stream_links_to_any_peer_link_with_its_window(
    autojump_clock: trio.testing.MockClock,
) -> None:
    carrier = RecordingLink()
    async with open_stream(role=Role.CLIENT, mode=Mode.BIDI, encoding=Encoding.RAW) as stream:
        stream.link(carrier, window=64, max_chunk_size=32)
        await stream.send(b"a" * 32)
        await stream.send(b"b" * 32)
        assert stream.info().send_credit == 0
        stream.grant_credit(32)  # an inbound STREAM_CREDIT frame
        await stream.send(b"c")
        stream.deliver_chunk(memoryview(b"in"))  # an inbound STREAM_CHUNK frame
        assert await stream.recv() == b"in"
        stream.deliver_end()
        await stream.close_send()
        with pytest.raises(trio.EndOfChannel):
            await stream.recv()
    assert carrier.frames == [
        ("chunk", b"a" * 32),
        ("chunk", b"b" * 32),
        ("chunk", b"c"),
        ("end", None),
    ]


async def test_peer_overrun_resets_with_resource_exhausted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    carrier = RecordingLink()
    async with open_stream(
        role=Role.SERVER, mode=Mode.BIDI, window=64, max_chunk_size=32
    ) as stream:
        stream.link(carrier, window=64, max_chunk_size=32)
        for _ in range(5):  # 5 x 16 bytes of credit, 64 granted
            stream.deliver_chunk(b"")
        with pytest.raises(StreamError, match="RESOURCE_EXHAUSTED"):
            await stream.recv()
    assert carrier.frames[0][0] == "error"
    assert carrier.frames[0][1].code is StatusCode.RESOURCE_EXHAUSTED


async def test_malformed_cbor_chunk_resets_the_stream_with_internal(
    autojump_clock: trio.testing.MockClock,
) -> None:
    carrier = RecordingLink()
    async with open_stream(role=Role.SERVER, mode=Mode.BIDI) as stream:
        stream.link(carrier, window=1024, max_chunk_size=512)
        stream.deliver_chunk(b"\x82\x01")  # an array of two that holds one item
        with pytest.raises(StreamError) as info:
            await stream.recv()
        assert info.value.code is StatusCode.INTERNAL
        assert "does not decode" in info.value.message
        with pytest.raises(StreamError) as again:  # the stored outcome, for later callers too
            await stream.recv()
        assert again.value == info.value
    errors = [frame for kind, frame in carrier.frames if kind == "error"]
    assert [e.code for e in errors] == [StatusCode.INTERNAL]  # the peer hears it once


async def test_malformed_cbor_reply_resets_the_stream_with_internal(
    autojump_clock: trio.testing.MockClock,
) -> None:
    carrier = RecordingLink()
    async with open_stream(role=Role.CLIENT, mode=Mode.CLIENT_STREAM) as stream:
        stream.link(carrier, window=1024, max_chunk_size=512)
        stream.deliver_reply(b"\xff")
        with pytest.raises(StreamError) as info:
            await stream.await_reply()
    assert info.value.code is StatusCode.INTERNAL
    assert [f.code for kind, f in carrier.frames if kind == "error"] == [StatusCode.INTERNAL]


async def test_late_deliveries_after_the_actor_ended_return_credit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    carrier = RecordingLink()
    async with open_stream(role=Role.CLIENT, mode=Mode.BIDI) as stream:
        stream.link(carrier, window=1024, max_chunk_size=512)
        await stream.abort(StatusCode.ABORTED, "bye")
    stream.deliver_chunk(b"late")
    stream.deliver_end()
    assert carrier.frames[-1] == ("credit", chunk_charge(4))


@pytest.mark.parametrize("mode", list(Mode))
async def test_owner_cancel_aborts_peer_with_cancelled(
    mode: Mode, autojump_clock: trio.testing.MockClock
) -> None:
    client = Stream(role=Role.CLIENT, mode=mode)
    async with open_stream(role=Role.SERVER, mode=mode) as server:
        pair(client, server)
        with trio.move_on_after(1):
            async with trio.open_nursery() as owner:
                await owner.start(client.run)
                await trio.sleep_forever()
        assert client.info().state is StreamState.RESET
        with pytest.raises(StreamError, match="CANCELLED") as caught:
            await server.recv()
        assert "owner" in caught.value.message


async def test_owner_raising_aborts_peer_with_cancelled_and_the_error_propagates(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = Stream(role=Role.SERVER, mode=Mode.BIDI)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        with pytest.raises(KeyError):  # unwrapped: as if there were no nursery inside
            async with open_stream(role=Role.CLIENT, mode=Mode.BIDI) as client:
                pair(client, server)
                raise KeyError("boom")
        with pytest.raises(StreamError, match="CANCELLED"):
            await server.recv()
        await server.close()


async def test_no_stream_task_outlives_its_owner_scope(
    autojump_clock: trio.testing.MockClock,
) -> None:
    before = len(trio.lowlevel.current_task().parent_nursery.child_tasks)  # type: ignore[union-attr]
    async with open_pair(mode=Mode.BIDI) as (client, server):
        await client.send(1)
    assert client.info().finished and server.info().finished
    after = len(trio.lowlevel.current_task().parent_nursery.child_tasks)  # type: ignore[union-attr]
    assert after == before


async def test_nursery_start_runs_until_close(autojump_clock: trio.testing.MockClock) -> None:
    client = Stream(role="client", mode="client_stream")
    server = Stream(role="server", mode="client_stream")
    pair(client, server)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            assert await nursery.start(client.run) is client
            await nursery.start(server.run)
            await client.send(2)
            await client.close_send()
            await server.reply(sum([chunk async for chunk in server]))
            assert await client.await_reply() == 2
            await client.close()
            await server.close()


async def test_close_completes_even_if_its_caller_is_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_pair(mode=Mode.BIDI) as (client, server):
        with trio.CancelScope() as scope:
            scope.cancel()
            await client.close()
        await trio.testing.wait_all_tasks_blocked()
        assert client.info().finished
        with pytest.raises(
            trio.EndOfChannel
        ):  # END came first, then CANCELLED stopped the send side
            await server.recv()
        assert server.info().send_state is SendState.RESET
