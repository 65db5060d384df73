"""Connection faults after the handshake: a cut, a silent peer, a BYE, a misbehaving peer.

However a connection ends, every stream on it ends at once (UNAVAILABLE when
the connection is lost), every waiter wakes, no task is left, and the carrier
says why. Raw peers speak frames directly to pin the wire behaviour.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import cbor2
import pytest
import trio
import trio.lowlevel
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlet.actors import StreamStateError
from streamlet.codec import (
    HEADER,
    ByePayload,
    CreditPayload,
    Encoding,
    ErrorPayload,
    Flags,
    Frame,
    FrameDecoder,
    FrameEncoder,
    FrameKind,
    Mode,
    OpenPayload,
    Side,
    StatusCode,
    StreamError,
)
from streamlet.runtime.carrier import Carrier
from streamlet.runtime.carrier_errors import (
    ConnectionLostError,
    PeerClosedError,
    PeerProtocolError,
    PeerUnresponsiveError,
)
from streamlet.runtime.endpoints import connect
from streamlet.runtime.router import Router
from streamlet.runtime.settings import ConnectionSettings

NO_PING = ConnectionSettings(ping_interval=None)


def make_router(events: list[str] | None = None) -> Router:
    router = Router()
    log = events if events is not None else []

    @router.bidi("echo")
    async def echo(stream: Any) -> None:
        try:
            async for chunk in stream:
                await stream.send(chunk)
        except trio.Cancelled:
            log.append("echo cancelled")
            raise

    @router.bidi("hold")
    async def hold(stream: Any) -> None:
        try:
            await trio.sleep_forever()
        finally:
            log.append("hold ended")

    @router.unary("slow_double")
    async def slow_double(request: int) -> int:
        await trio.sleep(0.5)
        return request * 2

    @router.server_stream("count")
    async def count(request: int, stream: Any) -> None:
        for i in range(request):
            await stream.send(i)

    return router


class CuttableStream(trio.abc.Stream):
    """One end of a memory pair that a test can cut, at once or after `cut_after` bytes sent.

    A cut closes the sending half of both ends, as a network cut looks to each
    side: the reads see EOF, the writes fail.
    """

    def __init__(
        self,
        inner: trio.testing.StapledStream[Any, Any],
        other: trio.testing.StapledStream[Any, Any],
        cut_after: int | None = None,
    ) -> None:
        self.inner = inner
        self.other = other
        self.cut_after = cut_after
        self.sent = 0

    async def cut(self) -> None:
        await trio.aclose_forcefully(self.inner.send_stream)
        await trio.aclose_forcefully(self.other.send_stream)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self.cut_after is not None and self.sent + len(data) >= self.cut_after:
            keep = max(self.cut_after - self.sent, 0)
            await self.inner.send_all(bytes(data[:keep]))
            await self.cut()
            raise trio.BrokenResourceError("cut by the test")
        self.sent += len(data)
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()


@asynccontextmanager
async def carriers(
    *,
    cut_after: int | None = None,
    client: ConnectionSettings = NO_PING,
    server: ConnectionSettings = NO_PING,
    events: list[str] | None = None,
) -> AsyncIterator[tuple[Carrier, Carrier, CuttableStream]]:
    """A client and a server carrier, both running, over a memory pair the test may cut."""
    client_end, server_end = trio.testing.memory_stream_pair()
    cuttable = CuttableStream(client_end, server_end, cut_after)
    client_carrier = Carrier(cuttable, side=Side.CONNECTOR, settings=client)
    server_carrier = Carrier(
        server_end, side=Side.ACCEPTOR, router=make_router(events), settings=server
    )
    failures: list[BaseException] = []

    async def run(carrier: Carrier) -> None:
        try:
            await carrier.run()
        except ConnectionError as exc:
            failures.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, server_carrier)
        nursery.start_soon(run, client_carrier)
        while client_carrier.peer_settings is None or server_carrier.peer_settings is None:
            await trio.lowlevel.checkpoint()
        await trio.testing.wait_all_tasks_blocked()
        yield client_carrier, server_carrier, cuttable
        nursery.cancel_scope.cancel()


async def test_cut_connection_ends_every_stream_with_unavailable() -> None:
    events: list[str] = []
    outcomes: list[StreamError] = []
    with trio.fail_after(5):
        async with carriers(events=events) as (client, server, wire):

            async def call(i: int) -> None:
                async with client.open_stream("hold", mode="bidi") as stream:
                    await stream.send(i)
                    with pytest.raises(StreamError) as caught:
                        await stream.recv()
                    outcomes.append(caught.value)

            async with trio.open_nursery() as nursery:
                for i in range(5):
                    nursery.start_soon(call, i)
                await trio.testing.wait_all_tasks_blocked()
                assert server.info().served_streams == 5
                await wire.cut()
            await trio.testing.wait_all_tasks_blocked()
            assert isinstance(client.failure, ConnectionLostError)
            assert isinstance(server.failure, ConnectionLostError)
            assert client.info().streams == server.info().streams == 0
    assert [error.code for error in outcomes] == [StatusCode.UNAVAILABLE] * 5
    assert outcomes[0].message == "connection lost: the peer closed the connection without BYE"
    assert events == ["hold ended"] * 5  # every handler was cancelled


async def test_open_after_the_connection_was_lost_raises_unavailable() -> None:
    with trio.fail_after(5):
        async with carriers() as (client, _server, wire):
            await wire.cut()
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(StreamError) as caught:
                async with client.open_stream("echo", mode="bidi"):
                    pytest.fail("the stream should not have opened")
    assert caught.value.code is StatusCode.UNAVAILABLE
    assert caught.value.message == (
        "the connection is closed: the peer closed the connection without BYE"
    )


async def test_connect_body_survives_a_lost_connection_and_peer_failure_says_why() -> None:
    client_end, server_end = trio.testing.memory_stream_pair()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:

            async def server() -> None:
                with pytest.raises(ConnectionLostError):
                    await Carrier(server_end, side=Side.ACCEPTOR, router=make_router()).run()

            nursery.start_soon(server)
            async with connect(client_end) as peer:
                async with peer.open_stream("echo", mode="bidi") as stream:
                    await stream.send("x")
                    assert await stream.recv() == "x"
                    await trio.aclose_forcefully(server_end)
                    with pytest.raises(StreamError) as caught:
                        await stream.recv()
                assert isinstance(peer.failure, ConnectionLostError)
                assert not peer.is_open
    assert caught.value.code is StatusCode.UNAVAILABLE


@given(
    cut_after=st.integers(min_value=200, max_value=6000),
    calls=st.lists(st.sampled_from(["echo", "count", "unary"]), min_size=1, max_size=6),
)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_cut_at_a_random_point_never_hangs(cut_after: int, calls: list[str]) -> None:
    """Whatever the scenario and wherever the cut: each call finishes or fails UNAVAILABLE."""

    async def scenario() -> list[str]:
        results: list[str] = []
        with trio.fail_after(10):
            async with carriers(cut_after=cut_after) as (client, _server, _wire):

                async def call(kind: str) -> None:
                    try:
                        if kind == "echo":
                            async with client.open_stream("echo", mode="bidi") as stream:
                                for i in range(20):
                                    try:
                                        await stream.send("x" * i)
                                    except StreamStateError as exc:
                                        # send paths are strict: the stored error is recv's outcome
                                        assert "the stream was reset" in str(exc)
                                        await stream.recv()
                                    assert await stream.recv() == "x" * i
                        elif kind == "count":
                            async with client.open_stream("count", mode="server_stream") as s:
                                await s.send(50)
                                assert [i async for i in s] == list(range(50))
                        else:
                            async with client.open_stream("slow_double", mode="unary") as s:
                                await s.send(21)
                                assert await s.await_reply() == 42
                        results.append("ok")
                    except StreamError as exc:
                        assert exc.code is StatusCode.UNAVAILABLE, exc
                        assert exc.message.startswith("connection lost: ")
                        results.append("unavailable")

                async with trio.open_nursery() as nursery:
                    for kind in calls:
                        nursery.start_soon(call, kind)
                assert client.info().streams == 0
        return results

    results = trio.run(scenario)
    assert len(results) == len(calls)


async def test_silent_peer_is_detected_by_ping_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A peer that completes the handshake and then never answers: UNAVAILABLE, not a hang."""
    client_end, server_end = trio.testing.memory_stream_pair()
    settings_ = ConnectionSettings(ping_interval=10, ping_timeout=5)
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(accept_then_ignore, server_end)
            async with connect(client_end, settings=settings_) as peer:
                start = trio.current_time()
                async with peer.open_stream("anything", mode="bidi") as stream:
                    with pytest.raises(StreamError) as caught:
                        await stream.recv()
                assert trio.current_time() - start == pytest.approx(15)
                assert isinstance(peer.failure, PeerUnresponsiveError)
            nursery.cancel_scope.cancel()
    assert caught.value.code is StatusCode.UNAVAILABLE
    assert caught.value.message == "connection lost: the peer did not answer PING within 5 s"


async def test_an_answering_peer_keeps_the_connection_alive(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fast = ConnectionSettings(ping_interval=1, ping_timeout=1)
    with trio.fail_after(1000):
        async with carriers(client=fast, server=fast) as (client, server, _wire):
            async with client.open_stream("echo", mode="bidi") as stream:
                await trio.sleep(60)  # 60 rounds of PING / PONG each way
                await stream.send(1)
                assert await stream.recv() == 1
            assert client.failure is None and server.failure is None


async def accept_then_ignore(server_end: trio.abc.Stream) -> None:
    """A raw acceptor: answers HELLO, then reads and drops everything."""
    raw = RawPeer(server_end, Side.ACCEPTOR)
    frame = await raw.receive_frame()
    assert frame is not None and frame.kind is FrameKind.HELLO
    await raw.send(frame_of(FrameKind.HELLO_ACK, NO_PING.hello_ack().encode()))
    while await raw.receive_frame() is not None:
        pass


class RawPeer:
    """A hand-driven end of a connection: sends any frame, reads frames with the codec."""

    def __init__(self, byte_stream: trio.abc.Stream, side: Side) -> None:
        self.byte_stream = byte_stream
        self.encoder = FrameEncoder(side)
        self.decoder = FrameDecoder(side)

    async def send(self, frame: Frame) -> None:
        await self.byte_stream.send_all(self.encoder.encode(frame))

    async def receive_frame(self) -> Frame | None:
        """The next frame, or None at EOF."""
        while (frame := self.decoder.next_frame()) is None:
            data = await self.byte_stream.receive_some()
            if not data:
                return None
            self.decoder.receive_data(data)
        return frame

    async def receive_kind(self, kind: FrameKind) -> Frame:
        """The next frame of `kind`, skipping credit frames."""
        while True:
            frame = await self.receive_frame()
            assert frame is not None, f"EOF while waiting for {kind.name}"
            if frame.kind is kind:
                return frame
            assert frame.kind is FrameKind.STREAM_CREDIT, f"expected {kind.name}, got {frame!r}"


def frame_of(kind: FrameKind, payload: bytes = b"", stream_id: int = 0) -> Frame:
    return Frame(kind, Flags.NONE, stream_id, payload)


def open_frame(stream_id: int, method: str, mode: str, window: int = 1 << 20) -> Frame:
    payload = OpenPayload(method, Mode(mode), Encoding.CBOR, window).encode()
    return frame_of(FrameKind.STREAM_OPEN, payload, stream_id)


@asynccontextmanager
async def raw_client(
    server_settings: ConnectionSettings = NO_PING, events: list[str] | None = None
) -> AsyncIterator[tuple[RawPeer, Carrier, list[BaseException]]]:
    """A raw connector against a real serving carrier; the carrier's failure is collected."""
    client_end, server_end = trio.testing.memory_stream_pair()
    server = Carrier(
        server_end, side=Side.ACCEPTOR, router=make_router(events), settings=server_settings
    )
    failures: list[BaseException] = []

    async def run() -> None:
        try:
            await server.run()
        except ConnectionError as exc:
            failures.append(exc)

    raw = RawPeer(client_end, Side.CONNECTOR)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        await raw.send(frame_of(FrameKind.HELLO, NO_PING.hello().encode()))
        ack = await raw.receive_frame()
        assert ack is not None and ack.kind is FrameKind.HELLO_ACK
        yield raw, server, failures
        nursery.cancel_scope.cancel()


async def test_ping_is_answered_with_the_same_bytes() -> None:
    with trio.fail_after(5):
        async with raw_client() as (raw, _server, _failures):
            await raw.send(frame_of(FrameKind.PING, b"abcdefgh"))
            pong = await raw.receive_kind(FrameKind.PONG)
    assert bytes(pong.payload) == b"abcdefgh"


async def test_credit_overrun_resets_that_stream_with_resource_exhausted() -> None:
    small = ConnectionSettings(ping_interval=None, initial_window=1024, max_chunk_size=512)
    events: list[str] = []
    with trio.fail_after(5):
        async with raw_client(small, events) as (raw, server, failures):
            await raw.send(open_frame(1, "hold", "bidi"))
            chunk = cbor2.dumps("x" * 400)
            for _ in range(3):  # 3 x 403 bytes > 1024 granted, nothing consumed
                await raw.send(frame_of(FrameKind.STREAM_CHUNK, chunk, 1))
            error = ErrorPayload.decode((await raw.receive_kind(FrameKind.STREAM_ERROR)).payload)
            await raw.send(frame_of(FrameKind.PING, b"stillok?"))  # the connection lives on
            assert bytes((await raw.receive_kind(FrameKind.PONG)).payload) == b"stillok?"
            await trio.testing.wait_all_tasks_blocked()
            assert server.info().served_streams == 0
            assert failures == []
    assert error.code is StatusCode.RESOURCE_EXHAUSTED
    assert error.message == (
        "peer overran its credit on stream 1: a 403-byte chunk with 218 bytes of credit left"
    )
    assert events == ["hold ended"]


async def test_max_concurrent_streams_refuses_the_next_with_resource_exhausted() -> None:
    limited = ConnectionSettings(ping_interval=None, max_streams=2)
    with trio.fail_after(5):
        async with raw_client(limited) as (raw, _server, _failures):
            for stream_id in (1, 3, 5):
                await raw.send(open_frame(stream_id, "hold", "bidi"))
            frame = await raw.receive_kind(FrameKind.STREAM_ERROR)
    assert frame.stream_id == 5
    error = ErrorPayload.decode(frame.payload)
    assert error.code is StatusCode.RESOURCE_EXHAUSTED
    assert error.message == "too many concurrent streams: the limit is 2"


async def test_malformed_open_resets_that_stream_with_invalid_argument() -> None:
    with trio.fail_after(5):
        async with raw_client() as (raw, _server, failures):
            bad = cbor2.dumps({"method": "echo", "mode": "sideways", "encoding": "cbor"})
            await raw.send(frame_of(FrameKind.STREAM_OPEN, bad, 1))
            frame = await raw.receive_kind(FrameKind.STREAM_ERROR)
            assert failures == []
    error = ErrorPayload.decode(frame.payload)
    assert error.code is StatusCode.INVALID_ARGUMENT
    assert error.message.startswith("bad STREAM_OPEN: STREAM_OPEN.mode: 'sideways' is not one of")


async def test_malformed_error_payload_ends_the_stream_with_internal() -> None:
    client_end, server_end = trio.testing.memory_stream_pair()
    raw = RawPeer(server_end, Side.ACCEPTOR)

    async def server() -> None:
        await raw.receive_frame()
        await raw.send(frame_of(FrameKind.HELLO_ACK, NO_PING.hello_ack().encode()))
        frame = await raw.receive_kind(FrameKind.STREAM_OPEN)
        bad = cbor2.dumps({"code": "not a number"})
        await raw.send(frame_of(FrameKind.STREAM_ERROR, bad, frame.stream_id))
        while await raw.receive_frame() is not None:
            pass

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server)
            async with (
                connect(client_end, settings=NO_PING) as peer,
                peer.open_stream("x", mode="bidi") as stream,
            ):
                with pytest.raises(StreamError) as caught:
                    await stream.recv()
    assert caught.value.code is StatusCode.INTERNAL
    assert caught.value.message.startswith("malformed STREAM_ERROR: STREAM_ERROR.code")


async def test_frame_for_a_never_opened_stream_is_a_connection_error() -> None:
    with trio.fail_after(5):
        async with raw_client() as (raw, server, failures):
            await raw.send(frame_of(FrameKind.STREAM_CREDIT, CreditPayload(5).encode(), 7))
            bye = ByePayload.decode((await raw.receive_kind(FrameKind.BYE)).payload)
            assert await raw.receive_frame() is None
            await trio.testing.wait_all_tasks_blocked()
    assert bye.code is StatusCode.INTERNAL
    assert bye.reason.startswith("frame for a stream that was never opened")
    assert isinstance(failures[0], PeerProtocolError)
    assert str(failures[0]).startswith("protocol error from the peer: frame for a stream")
    assert server.failure is failures[0]


async def test_peer_bye_with_an_error_code_fails_the_streams() -> None:
    client_end, server_end = trio.testing.memory_stream_pair()
    raw = RawPeer(server_end, Side.ACCEPTOR)
    opened = trio.Event()

    async def server() -> None:
        await raw.receive_frame()
        await raw.send(frame_of(FrameKind.HELLO_ACK, NO_PING.hello_ack().encode()))
        await raw.receive_kind(FrameKind.STREAM_OPEN)
        await opened.wait()
        bye = ByePayload(StatusCode.INTERNAL, "the server is broken", 1)
        await raw.send(frame_of(FrameKind.BYE, bye.encode()))
        while await raw.receive_frame() is not None:
            pass

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server)
            async with connect(client_end, settings=NO_PING) as peer:
                async with peer.open_stream("x", mode="bidi") as stream:
                    await stream.send(1)
                    opened.set()
                    with pytest.raises(StreamError) as caught:
                        await stream.recv()
                assert isinstance(peer.failure, PeerClosedError)
    assert caught.value.code is StatusCode.UNAVAILABLE
    assert caught.value.message == (
        "connection lost: the peer closed the connection: INTERNAL: the server is broken"
    )


async def test_bye_drains_open_streams_and_refuses_new_ones() -> None:
    with trio.fail_after(5):
        async with carriers() as (client, server, _wire):
            async with client.open_stream("echo", mode="bidi") as stream:
                await stream.send("before")
                assert await stream.recv() == "before"
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(server.shutdown)
                    await trio.testing.wait_all_tasks_blocked()
                    assert client.info().bye_received
                    with pytest.raises(StreamError) as refused:
                        async with client.open_stream("echo", mode="bidi"):
                            pytest.fail("no new stream after BYE")
                    await stream.send("after")  # the open stream still works
                    assert await stream.recv() == "after"
                    await stream.close_send()
                    assert [chunk async for chunk in stream] == []
            await trio.testing.wait_all_tasks_blocked()
            assert server.info().closed and client.info().closed
            assert server.failure is None and client.failure is None
    assert refused.value.code is StatusCode.UNAVAILABLE
    assert refused.value.message == "the peer is shutting down (BYE received): no new streams"


async def test_after_sending_bye_new_opens_from_the_peer_are_refused() -> None:
    with trio.fail_after(5):
        async with raw_client() as (raw, server, _failures):
            await raw.send(open_frame(1, "hold", "bidi"))
            await trio.testing.wait_all_tasks_blocked()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(server.shutdown)
                bye = ByePayload.decode((await raw.receive_kind(FrameKind.BYE)).payload)
                await raw.send(open_frame(3, "echo", "bidi"))
                refusal = await raw.receive_kind(FrameKind.STREAM_ERROR)
                with pytest.raises(StreamError) as local:
                    async with server.open_stream("echo", mode="bidi"):
                        pytest.fail("no new stream after BYE")
                error = ErrorPayload(StatusCode.CANCELLED, "client gives up").encode()
                await raw.send(frame_of(FrameKind.STREAM_ERROR, error, 1))
            assert server.info().closed
    assert bye == ByePayload(StatusCode.OK, "", 1)
    assert refusal.stream_id == 3
    assert ErrorPayload.decode(refusal.payload) == ErrorPayload(
        StatusCode.UNAVAILABLE, "the connection is shutting down (BYE): no new streams"
    )
    assert local.value.message == "the connection is shutting down (BYE sent): no new streams"


async def test_streams_above_the_byes_last_stream_id_fail_and_may_be_retried() -> None:
    client_end, server_end = trio.testing.memory_stream_pair()
    raw = RawPeer(server_end, Side.ACCEPTOR)

    async def server() -> None:
        await raw.receive_frame()
        await raw.send(frame_of(FrameKind.HELLO_ACK, NO_PING.hello_ack().encode()))
        await raw.receive_kind(FrameKind.STREAM_OPEN)
        await raw.receive_kind(FrameKind.STREAM_OPEN)
        await raw.send(frame_of(FrameKind.BYE, ByePayload(StatusCode.OK, "bye", 1).encode()))
        await raw.send(frame_of(FrameKind.STREAM_END, b"", 1))
        while await raw.receive_frame() is not None:
            pass

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server)
            async with (
                connect(client_end, settings=NO_PING) as peer,
                peer.open_stream("a", mode="bidi") as first,
                peer.open_stream("b", mode="bidi") as second,
            ):
                with pytest.raises(StreamError) as caught:
                    await second.recv()
                assert [chunk async for chunk in first] == []  # stream 1 ended normally
    assert caught.value.code is StatusCode.UNAVAILABLE
    assert "did not process this stream; it may be retried" in caught.value.message


async def test_late_frames_for_a_finished_stream_are_dropped() -> None:
    with trio.fail_after(5):
        async with raw_client() as (raw, server, failures):
            await raw.send(open_frame(1, "echo", "bidi"))
            await raw.send(frame_of(FrameKind.STREAM_END, b"", 1))
            await raw.receive_kind(FrameKind.STREAM_END)  # the handler ended too
            await trio.testing.wait_all_tasks_blocked()
            assert server.info().streams == 0
            await raw.send(frame_of(FrameKind.STREAM_CHUNK, cbor2.dumps("late"), 1))
            await raw.send(frame_of(FrameKind.STREAM_CREDIT, CreditPayload(9).encode(), 1))
            await raw.send(frame_of(FrameKind.PING, b"alive?!!"))
            assert bytes((await raw.receive_kind(FrameKind.PONG)).payload) == b"alive?!!"
            assert failures == []


async def test_an_open_with_a_window_below_one_chunk_is_refused() -> None:
    with trio.fail_after(5):
        async with raw_client() as (raw, _server, _failures):
            fields = {"method": "echo", "mode": "bidi", "encoding": "cbor", "initial_window": 8}
            await raw.send(frame_of(FrameKind.STREAM_OPEN, cbor2.dumps(fields), 1))
            frame = await raw.receive_kind(FrameKind.STREAM_ERROR)
    assert ErrorPayload.decode(frame.payload) == ErrorPayload(
        StatusCode.INVALID_ARGUMENT,
        "bad STREAM_OPEN: STREAM_OPEN.initial_window: 8 is outside [16, 2147483647]",
    )


async def test_a_second_hello_is_a_connection_error() -> None:
    with trio.fail_after(5):
        async with raw_client() as (raw, _server, failures):
            await raw.send(frame_of(FrameKind.HELLO, NO_PING.hello().encode()))
            bye = ByePayload.decode((await raw.receive_kind(FrameKind.BYE)).payload)
            assert await raw.receive_frame() is None
    assert bye.code is StatusCode.INTERNAL
    assert bye.reason == ("HELLO after the handshake: it is sent once, as the first frame")
    assert isinstance(failures[0], PeerProtocolError)


async def test_an_opener_cancelled_before_its_stream_started_still_ends_it_at_the_peer() -> None:
    client_end, server_end = trio.testing.memory_stream_pair()
    raw = RawPeer(server_end, Side.ACCEPTOR)
    seen: list[Frame] = []

    async def server() -> None:
        await raw.receive_frame()
        await raw.send(frame_of(FrameKind.HELLO_ACK, NO_PING.hello_ack().encode()))
        seen.append(await raw.receive_kind(FrameKind.STREAM_OPEN))
        seen.append(await raw.receive_kind(FrameKind.STREAM_ERROR))

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server)
            async with connect(client_end, settings=NO_PING) as peer:
                with trio.CancelScope() as scope:
                    scope.cancel()
                    async with peer.open_stream("x", mode="bidi"):
                        pytest.fail("the body of a cancelled open should not run")
                await trio.testing.wait_all_tasks_blocked()
                assert peer.info().streams == 0
    assert [frame.stream_id for frame in seen] == [1, 1]
    assert ErrorPayload.decode(seen[1].payload) == ErrorPayload(
        StatusCode.CANCELLED, "the opener was cancelled before the stream started"
    )


async def test_a_frame_over_the_max_frame_size_ends_the_connection() -> None:
    with trio.fail_after(5):
        async with raw_client() as (raw, _server, failures):
            await raw.send(open_frame(1, "echo", "bidi"))
            oversized = HEADER.pack(NO_PING.max_frame_size + 1, FrameKind.STREAM_CHUNK, 0, 0, 1)
            await raw.byte_stream.send_all(oversized)
            bye = ByePayload.decode((await raw.receive_kind(FrameKind.BYE)).payload)
    assert bye.code is StatusCode.INTERNAL
    assert bye.reason == (
        "length 65537 is over the max frame size 65536: kind=STREAM_CHUNK flags=0x00(none) "
        "stream_id=1"
    )
    assert isinstance(failures[0], PeerProtocolError)


async def test_opening_in_an_encoding_the_peer_does_not_list_is_unimplemented() -> None:
    client_end, server_end = trio.testing.memory_stream_pair()
    raw = RawPeer(server_end, Side.ACCEPTOR)

    async def cbor_only_server() -> None:
        await raw.receive_frame()
        ack = cbor2.loads(NO_PING.hello_ack().encode()) | {"encodings": ["cbor", "zstd"]}
        await raw.send(frame_of(FrameKind.HELLO_ACK, cbor2.dumps(ack)))
        while await raw.receive_frame() is not None:
            pass

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(cbor_only_server)
            async with connect(client_end, settings=NO_PING) as peer:
                with pytest.raises(StreamError) as caught:
                    async with peer.open_stream("x", mode="bidi", encoding="raw"):
                        pytest.fail("the peer cannot read raw chunks")
    assert caught.value.code is StatusCode.UNIMPLEMENTED
    assert caught.value.message == (
        "the peer does not understand the 'raw' chunk encoding (its HELLO lists ['cbor'])"
    )
