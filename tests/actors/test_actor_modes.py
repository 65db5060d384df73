"""The actor with a local pair, per rule, in all four modes and both encodings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio
import trio.testing
from streamlet.actors import (
    ChunkTooLargeError,
    RecvState,
    ReplyState,
    SendState,
    StreamState,
    StreamStateError,
    open_pair,
)
from streamlet.codec.chunks import Encoding
from streamlet.codec.modes import Mode
from streamlet.codec.status import StatusCode, StreamError

Sample = Callable[[Encoding, int], Any]
MODES = list(Mode)
ENCODINGS = list(Encoding)
REPLY_MODES = [Mode.UNARY, Mode.CLIENT_STREAM]
SINGLE_REQUEST = [Mode.UNARY, Mode.SERVER_STREAM]
SERVER_SENDS = [Mode.SERVER_STREAM, Mode.BIDI]


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("mode", MODES)
async def test_each_mode_completes_its_call_shape(
    mode: Mode, encoding: Encoding, sample: Sample, autojump_clock: trio.testing.MockClock
) -> None:
    requests = (
        [sample(encoding, 0)] if mode in SINGLE_REQUEST else [sample(encoding, i) for i in range(5)]
    )
    responses = [sample(encoding, 100 + i) for i in range(4)]
    with trio.fail_after(10):
        async with open_pair(mode=mode, encoding=encoding) as (client, server):

            async def serve() -> None:
                got = [chunk async for chunk in server]
                assert got == requests
                if mode in SERVER_SENDS:
                    for value in responses:
                        await server.send(value)
                if mode is Mode.SERVER_STREAM:
                    await server.close_send()
                else:
                    await server.reply(sample(encoding, 99))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(serve)
                for value in requests:
                    await client.send(value)
                await client.close_send()
                if mode in SERVER_SENDS:
                    assert [chunk async for chunk in client] == responses
                if mode is not Mode.SERVER_STREAM:
                    assert await client.await_reply() == sample(encoding, 99)
            assert client.info().state is StreamState.CLOSED
            assert server.info().state is StreamState.CLOSED


@pytest.mark.parametrize("mode", [Mode.CLIENT_STREAM, Mode.BIDI])
async def test_send_after_close_send_raises(
    mode: Mode, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_pair(mode=mode) as (client, _server):
        await client.send(1)
        await client.close_send()
        before = client.info()
        with pytest.raises(StreamStateError, match=r"send on stream 1 \(client"):
            await client.send(2)
        assert client.info() == before


@pytest.mark.parametrize("mode", SINGLE_REQUEST)
async def test_second_request_chunk_raises(
    mode: Mode, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_pair(mode=mode) as (client, server):
        await client.send("request")
        with pytest.raises(StreamStateError, match="send side is closed"):
            await client.send("another")
        assert await server.recv() == "request"
        with pytest.raises(trio.EndOfChannel):
            await server.recv()
        await server.abort(StatusCode.ABORTED, "done")


@pytest.mark.parametrize("mode", [Mode.UNARY, Mode.CLIENT_STREAM, Mode.BIDI])
async def test_second_reply_raises(mode: Mode, autojump_clock: trio.testing.MockClock) -> None:
    async with open_pair(mode=mode) as (client, server):
        await server.reply("one")
        with pytest.raises(StreamStateError, match="reply on stream 1"):
            await server.reply("two")
        assert await client.await_reply() == "one"
        assert server.info().reply_state is ReplyState.VALUE


@pytest.mark.parametrize("mode", MODES)
async def test_reply_from_client_raises(mode: Mode, autojump_clock: trio.testing.MockClock) -> None:
    async with open_pair(mode=mode) as (client, _server):
        with pytest.raises(StreamStateError, match="may not reply"):
            await client.reply("x")


@pytest.mark.parametrize("mode", REPLY_MODES)
async def test_reply_mode_client_recv_raises(
    mode: Mode, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_pair(mode=mode) as (client, _server):
        with pytest.raises(StreamStateError, match="may not recv"):
            await client.recv()


@pytest.mark.parametrize("mode", REPLY_MODES)
async def test_reply_mode_server_send_raises(
    mode: Mode, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_pair(mode=mode) as (_client, server):
        with pytest.raises(StreamStateError, match="may not send"):
            await server.send("x")


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("mode", MODES)
async def test_recv_after_peer_error_raises_stored_error(
    mode: Mode, encoding: Encoding, sample: Sample, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_pair(mode=mode, encoding=encoding) as (client, server):
        await client.abort(StatusCode.PERMISSION_DENIED, "no", {"why": 1})
        expected = StreamError(StatusCode.PERMISSION_DENIED, "no", {"why": 1})
        for _ in range(2):  # stored: a late asker gets it too
            with pytest.raises(StreamError) as caught:
                await server.recv()
            assert caught.value == expected
        assert server.info().state is StreamState.RESET


@pytest.mark.parametrize("mode", [Mode.UNARY, Mode.CLIENT_STREAM, Mode.BIDI])
async def test_await_reply_after_reply_error_raises_stored_error(
    mode: Mode, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_pair(mode=mode) as (client, server):
        await server.reply_error(StatusCode.INVALID_ARGUMENT, "bad request")
        for _ in range(2):
            with pytest.raises(StreamError, match="INVALID_ARGUMENT: bad request"):
                await client.await_reply()
        assert client.info().reply_state is ReplyState.ERROR
        assert server.info().reply_state is ReplyState.ERROR


async def test_abort_reaches_waiters_on_both_sides(autojump_clock: trio.testing.MockClock) -> None:
    outcomes: list[str] = []

    async def expect_error(call: Callable[[], Any]) -> None:
        with pytest.raises(StreamError, match="ABORTED: stop"):
            await call()
        outcomes.append("error")

    async with open_pair(mode=Mode.BIDI) as (client, server), trio.open_nursery() as nursery:
        nursery.start_soon(expect_error, client.recv)
        nursery.start_soon(expect_error, client.await_reply)
        nursery.start_soon(expect_error, server.recv)
        await trio.testing.wait_all_tasks_blocked()
        assert client.info().waiters == 2 and server.info().waiters == 1
        await client.abort(StatusCode.ABORTED, "stop")
    assert outcomes == ["error"] * 3


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_chunk_over_max_size_raises_at_once(
    encoding: Encoding, autojump_clock: trio.testing.MockClock
) -> None:
    value = b"x" * 200 if encoding is Encoding.RAW else "x" * 200
    async with open_pair(mode=Mode.BIDI, encoding=encoding, window=1024, max_chunk_size=100) as (
        client,
        server,
    ):
        with trio.fail_after(1), pytest.raises(ChunkTooLargeError, match="max chunk size of 100"):
            await client.send(value)
        with pytest.raises(ChunkTooLargeError):
            await server.reply(value)
        assert client.info().chunks_sent == 0


async def test_value_that_does_not_fit_the_encoding_raises_type_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_pair(mode=Mode.BIDI, encoding=Encoding.RAW) as (client, _server):
        with pytest.raises(TypeError, match="raw stream carries bytes-like"):
            await client.send("text")


async def test_values_are_not_shared_between_the_two_sides(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_pair(mode=Mode.BIDI, encoding=Encoding.RAW) as (client, server):
        buffer = bytearray(b"abc")
        await client.send(buffer)
        buffer[0] = ord("z")
        assert await server.recv() == b"abc"
    async with open_pair(mode=Mode.BIDI) as (client, server):
        value = {"list": [1, 2]}
        await client.send(value)
        received = await server.recv()
        assert received == value and received is not value


async def test_recv_after_end_raises_end_of_channel(autojump_clock: trio.testing.MockClock) -> None:
    async with open_pair(mode=Mode.BIDI) as (client, server):
        await client.send(1)
        await client.close_send()
        assert await server.recv() == 1
        for _ in range(2):
            with pytest.raises(trio.EndOfChannel):
                await server.recv()


async def test_await_reply_after_bidi_end_raises_end_of_channel(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_pair(mode=Mode.BIDI) as (client, server):
        await server.close_send()
        with pytest.raises(trio.EndOfChannel):
            await client.await_reply()


async def test_cancelled_recv_leaves_the_stream_usable(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_pair(mode=Mode.BIDI) as (client, server):
        with trio.move_on_after(1) as scope:
            await server.recv()
        assert scope.cancelled_caught
        assert server.info().waiters == 0
        await client.send("after")
        assert await server.recv() == "after"


async def test_close_before_peer_end_cancels_the_peer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_pair(mode=Mode.SERVER_STREAM) as (client, server):
        await client.send("go")
        await server.send(1)
        assert await client.recv() == 1
        await client.close()
        await client.close()  # idempotent
        with pytest.raises(StreamError) as caught:  # the call's outcome, not a misuse
            for i in range(10):
                await server.send(i)
        assert caught.value == StreamError(StatusCode.CANCELLED, "the peer closed the stream")
        info = client.info()
        assert (info.send_state, info.recv_state) == (SendState.ENDED, RecvState.RESET)


async def test_server_close_after_peer_end_ends_the_peer_cleanly(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_pair(mode=Mode.BIDI) as (client, server):
        await client.close_send()
        await server.send(1)
        await server.close()
        assert [chunk async for chunk in client] == [1]
        assert client.info().recv_state is RecvState.ENDED


async def test_calls_after_close_are_answered_in_place(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_pair(mode=Mode.BIDI) as (client, server):
        await server.send("kept")
        await server.close_send()
        await client.close_send()
        await trio.testing.wait_all_tasks_blocked()
        await client.close()
        assert client.info().finished
        assert await client.recv() == "kept"  # buffered after the peer's END: still readable
        with pytest.raises(trio.EndOfChannel):
            await client.recv()
        with pytest.raises(StreamStateError):
            await client.send("late")


async def test_chunks_sent_before_a_peer_error_are_still_received_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_pair(mode=Mode.SERVER_STREAM) as (client, server):
        await client.send("go")
        for i in range(3):
            await server.send(i)
        await server.abort(StatusCode.ABORTED, "gave up at 3")
        await trio.sleep(1)  # everything has arrived before the client reads
        assert [await client.recv() for _ in range(3)] == [0, 1, 2]
        for _ in range(2):  # then the error, for every later call too
            with pytest.raises(StreamError) as caught:
                await client.recv()
            assert caught.value == StreamError(StatusCode.ABORTED, "gave up at 3")


async def test_own_abort_drops_chunks_buffered_after_a_peer_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_pair(mode=Mode.BIDI) as (client, server):
        await server.send(1)
        await server.abort(StatusCode.ABORTED, "server gave up")
        await trio.sleep(1)
        assert client.info().buffered_chunks == 1
        await client.abort(StatusCode.CANCELLED, "client gives up too")
        assert client.info().buffered_chunks == 0
        with pytest.raises(StreamError) as caught:
            await client.recv()
        assert caught.value.code is StatusCode.ABORTED  # the first error stays the outcome


async def test_send_after_peer_error_raises_the_stored_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_pair(mode=Mode.CLIENT_STREAM) as (client, server):
        await client.send(1)
        await server.reply_error(StatusCode.INVALID_ARGUMENT, "bad chunk", {"at": 1})
        await trio.sleep(1)
        expected = StreamError(StatusCode.INVALID_ARGUMENT, "bad chunk", {"at": 1})
        with pytest.raises(StreamError) as on_send:
            await client.send(2)
        assert on_send.value == expected
        with pytest.raises(StreamError) as on_close_send:
            await client.close_send()
        assert on_close_send.value == expected
        with pytest.raises(StreamError) as on_reply:
            await client.await_reply()
        assert on_reply.value == expected
        assert client.info().chunks_sent == 1  # nothing more left


async def test_send_after_own_abort_raises_stream_state_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_pair(mode=Mode.BIDI) as (client, _server):
        await client.abort(StatusCode.CANCELLED, "done")
        with pytest.raises(StreamStateError, match="send on stream 1"):
            await client.send(1)
        with pytest.raises(StreamStateError, match="close_send on stream 1"):
            await client.close_send()
