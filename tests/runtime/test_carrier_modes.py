"""Every call mode end to end over the carrier (memory pair), with each chunk encoding.

The same handlers as the local pairs, through the whole wire path: HELLO,
STREAM_OPEN, fragmentation, credit and the statuses of every refusal.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing
from streamlet.actors import ChunkTooLargeError
from streamlet.codec import (
    Encoding,
    Flags,
    Frame,
    FrameDecoder,
    FrameEncoder,
    FrameKind,
    Side,
    StatusCode,
    StreamError,
)
from streamlet.runtime.carrier import Carrier
from streamlet.runtime.endpoints import connect, open_memory_connection, serve
from streamlet.runtime.router import Router
from streamlet.runtime.settings import ConnectionSettings


def sample(encoding: Encoding, i: int) -> Any:
    return bytes([i % 256]) * (i % 7 + 1) if encoding is Encoding.RAW else {"i": i, "s": "x" * i}


def make_router() -> Router:
    router = Router()

    @router.unary("echo_unary")
    async def echo_unary(request: Any) -> Any:
        return request

    @router.server_stream("repeat")
    async def repeat(request: Any, stream: Any) -> None:
        for _ in range(5):
            await stream.send(request)

    @router.client_stream("collect")
    async def collect(stream: Any) -> Any:
        chunks = [chunk async for chunk in stream]
        return chunks[-1] if chunks else None

    @router.bidi("echo")
    async def echo(stream: Any) -> None:
        async for chunk in stream:
            await stream.send(chunk)

    @router.unary("fail")
    async def fail(request: Any) -> Any:
        raise RuntimeError("handler broke on purpose")

    @router.unary("refuse")
    async def refuse(request: Any) -> Any:
        raise StreamError(StatusCode.PERMISSION_DENIED, "not for you", {"who": "tester"})

    @router.unary("sleep")
    async def sleep(request: Any) -> Any:
        await trio.sleep_forever()

    @router.client_stream("count_bytes")
    async def count_bytes(stream: Any) -> bytes:
        return str(sum([len(chunk) async for chunk in stream])).encode()

    return router


@pytest.fixture
async def peer() -> AsyncIterator[Any]:
    async with open_memory_connection(make_router()) as connected:
        yield connected


@pytest.mark.parametrize("encoding", list(Encoding))
async def test_unary_round_trip(peer: Any, encoding: Encoding) -> None:
    with trio.fail_after(5):
        value = sample(encoding, 3)
        assert await peer.call_unary("echo_unary", value, encoding=encoding) == value


@pytest.mark.parametrize("encoding", list(Encoding))
async def test_server_stream_sends_every_chunk_then_ends(peer: Any, encoding: Encoding) -> None:
    with trio.fail_after(5):
        value = sample(encoding, 4)
        assert await peer.call_server_stream("repeat", value, encoding=encoding) == [value] * 5


@pytest.mark.parametrize("encoding", list(Encoding))
async def test_client_stream_replies_once(peer: Any, encoding: Encoding) -> None:
    with trio.fail_after(5):
        values = [sample(encoding, i) for i in range(20)]
        assert await peer.call_client_stream("collect", values, encoding=encoding) == values[-1]


@pytest.mark.parametrize("encoding", list(Encoding))
async def test_bidi_echoes_in_order(peer: Any, encoding: Encoding) -> None:
    with trio.fail_after(5):
        async with peer.open_stream("echo", mode="bidi", encoding=encoding) as stream:
            for i in range(50):
                await stream.send(sample(encoding, i))
                assert await stream.recv() == sample(encoding, i)
            await stream.close_send()
            assert [chunk async for chunk in stream] == []
            with pytest.raises(trio.EndOfChannel):
                await stream.await_reply()


async def test_client_stream_from_async_iterable(peer: Any) -> None:
    async def chunks() -> AsyncIterator[int]:
        for i in range(3):
            yield i

    with trio.fail_after(5):
        assert await peer.call_client_stream("collect", chunks()) == 2


async def test_chunks_larger_than_a_frame_are_fragmented_and_joined(peer: Any) -> None:
    big = bytes(range(256)) * 2000  # 512000 bytes: 8 frames of 64 KiB
    with trio.fail_after(10):
        async with peer.open_stream("echo", mode="bidi", encoding="raw") as stream:
            await stream.send(big)
            assert await stream.recv() == big
            await stream.close_send()


async def test_many_chunks_beyond_the_window_flow_with_credit() -> None:
    settings = ConnectionSettings(initial_window=4096, max_chunk_size=1024)
    async with open_memory_connection(make_router(), settings=settings) as peer:
        with trio.fail_after(10):
            chunks = [b"z" * 1000 for _ in range(200)]  # 50x the window
            assert await peer.call_client_stream("count_bytes", chunks, encoding="raw") == b"200000"


async def test_chunk_over_the_peers_max_chunk_size_raises_at_once() -> None:
    settings = ConnectionSettings(initial_window=4096, max_chunk_size=1024)
    async with open_memory_connection(make_router(), server_settings=settings) as peer:
        with trio.fail_after(5):
            async with peer.open_stream("echo", mode="bidi", encoding="raw") as stream:
                with pytest.raises(ChunkTooLargeError, match="max chunk size of 1024"):
                    await stream.send(b"x" * 1025)


async def test_unknown_method_is_not_found(peer: Any) -> None:
    with trio.fail_after(5), pytest.raises(StreamError) as caught:
        await peer.call_unary("nope", 1)
    assert caught.value.code is StatusCode.NOT_FOUND
    assert "no handler for method 'nope'" in caught.value.message


async def test_wrong_mode_is_unimplemented(peer: Any) -> None:
    with trio.fail_after(5), pytest.raises(StreamError) as caught:
        await peer.call_unary("echo", 1)
    assert caught.value.code is StatusCode.UNIMPLEMENTED
    assert "served as bidi, not unary" in caught.value.message


async def test_handler_exception_is_internal_with_its_message(peer: Any) -> None:
    with trio.fail_after(5), pytest.raises(StreamError) as caught:
        await peer.call_unary("fail", 1)
    assert caught.value.code is StatusCode.INTERNAL
    assert caught.value.message == "handler broke on purpose"


async def test_handler_stream_error_crosses_with_code_message_and_details(peer: Any) -> None:
    with trio.fail_after(5), pytest.raises(StreamError) as caught:
        await peer.call_unary("refuse", 1)
    assert caught.value == StreamError(
        StatusCode.PERMISSION_DENIED, "not for you", {"who": "tester"}
    )


async def test_unary_deadline_fires_on_both_sides(peer: Any) -> None:
    with trio.fail_after(5), pytest.raises(StreamError) as caught:
        await peer.call_unary("sleep", 1, deadline=0.05)
    assert caught.value.code is StatusCode.DEADLINE_EXCEEDED
    assert "deadline of 0.05 s exceeded" in caught.value.message


async def test_unary_calls_get_the_default_deadline(autojump_clock: Any) -> None:
    async with open_memory_connection(make_router()) as peer:
        start = trio.current_time()
        with trio.fail_after(100), pytest.raises(StreamError) as caught:
            await peer.call_unary("sleep", 1)
        assert caught.value.code is StatusCode.DEADLINE_EXCEEDED
        assert trio.current_time() - start == pytest.approx(30.0)


async def test_client_deadline_fires_even_if_the_server_never_answers() -> None:
    """The server is a byte sink after the handshake: only the local deadline can end the call."""
    client_end, server_end = trio.testing.memory_stream_pair()
    settings = ConnectionSettings(ping_interval=None)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_handshake_then_listen, server_end)
        async with connect(client_end, settings=settings) as peer:
            with trio.fail_after(5):
                async with peer.open_stream("x", mode="bidi", deadline=0.05) as stream:
                    with pytest.raises(StreamError) as caught:
                        await stream.recv()
        nursery.cancel_scope.cancel()
    assert caught.value.code is StatusCode.DEADLINE_EXCEEDED


async def _handshake_then_listen(server_end: trio.abc.Stream) -> None:
    decoder = FrameDecoder(Side.ACCEPTOR)
    while decoder.next_frame() is None:
        decoder.receive_data(await server_end.receive_some())
    ack = ConnectionSettings().hello_ack().encode()
    await server_end.send_all(
        FrameEncoder(Side.ACCEPTOR).encode(Frame(FrameKind.HELLO_ACK, Flags.NONE, 0, ack))
    )
    while await server_end.receive_some():
        pass


async def test_metadata_reaches_the_handler() -> None:
    router = Router()

    @router.unary("whoami")
    async def whoami(request: Any, stream: Any) -> Any:
        return dict(stream.metadata)

    async with open_memory_connection(router) as peer:
        with trio.fail_after(5):
            assert await peer.call_unary("whoami", None, metadata={"user": "ada"}) == {
                "user": "ada"
            }


async def test_metadata_over_the_limit_is_refused_before_sending(peer: Any) -> None:
    with pytest.raises(ValueError, match="metadata"):
        await peer.call_unary("echo_unary", 1, metadata={"k": "v" * 9000})


async def test_leaving_the_block_with_an_exception_cancels_the_handler() -> None:
    router = Router()
    handler_cancelled = trio.Event()

    @router.bidi("wait")
    async def wait(stream: Any) -> None:
        try:
            await trio.sleep_forever()
        finally:
            handler_cancelled.set()

    async with open_memory_connection(router) as peer:
        with trio.fail_after(5):
            with pytest.raises(KeyError):
                async with peer.open_stream("wait", mode="bidi") as stream:
                    await stream.send(1)
                    raise KeyError("the owner failed")
            await handler_cancelled.wait()


async def test_the_connecting_side_can_serve_too() -> None:
    """Either side opens streams to the other's router; ids keep their parity."""
    client_router = Router()

    @client_router.unary("hello")
    async def hello(request: Any) -> Any:
        return f"client says hi to {request}"

    server_router = Router()
    seen: list[str] = []

    @server_router.unary("call_back")
    async def call_back(request: Any) -> Any:
        return "ok"

    client_end, server_end = trio.testing.memory_stream_pair()

    server = Carrier(server_end, side=Side.ACCEPTOR, router=server_router)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.run)
            async with connect(client_end, router=client_router) as peer:
                await trio.testing.wait_all_tasks_blocked()
                async with server.open_stream("hello", mode="unary") as stream:
                    assert stream.id == 2
                    await stream.send("server")
                    seen.append(await stream.await_reply())
                assert await peer.call_unary("call_back", None) == "ok"
    assert seen == ["client says hi to server"]


async def test_a_side_without_router_refuses_with_unimplemented() -> None:
    client_end, server_end = trio.testing.memory_stream_pair()

    server = Carrier(server_end, side=Side.ACCEPTOR, router=make_router())
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.run)
            async with connect(client_end):
                await trio.testing.wait_all_tasks_blocked()
                async with server.open_stream("anything", mode="unary") as stream:
                    await stream.send(1)
                    with pytest.raises(StreamError) as caught:
                        await stream.await_reply()
    assert caught.value.code is StatusCode.UNIMPLEMENTED
    assert "serves no methods (no router): 'anything'" in caught.value.message


async def test_stream_ids_are_odd_from_the_connector_and_never_reused(peer: Any) -> None:
    ids: list[int] = []
    with trio.fail_after(5):
        for _ in range(3):
            async with peer.open_stream("echo", mode="bidi") as stream:
                ids.append(stream.id)
                await stream.close_send()
    assert ids == [1, 3, 5]


async def test_serve_returns_after_the_client_closes_gracefully() -> None:
    client_end, server_end = trio.testing.memory_stream_pair()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve, make_router(), server_end)
            async with connect(client_end) as peer:
                assert await peer.call_unary("echo_unary", 7) == 7
            # leaving `connect` sent BYE; `serve` returns without raising
