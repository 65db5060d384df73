"""Dispatch rules, checked through `open_local`: the handler runs in-process as over a wire."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pytest
import trio
import trio.testing
from streamlet.actors import DEFAULT_WINDOW, Role, Stream
from streamlet.codec.chunks import Encoding
from streamlet.codec.modes import Mode
from streamlet.codec.status import StatusCode, StreamError
from streamlet.runtime.dispatch import (
    DEFAULT_UNARY_DEADLINE,
    CallInfo,
    ServerStream,
    serve_stream,
)
from streamlet.runtime.endpoints import open_memory_connection
from streamlet.runtime.router import Router
from streamlet.runtime.settings import ConnectionSettings

from streamlet.testing import open_local

router = Router()
handler_log: list[str] = []


@router.unary("add")
async def add(request: Mapping[str, int]) -> int:
    return request["a"] + request["b"]


@router.unary("whoami")
async def whoami(request: None, stream: ServerStream) -> dict[str, Any]:
    return {"method": stream.method, "metadata": dict(stream.metadata), "id": stream.id}


@router.server_stream("ticks")
async def ticks(request: Mapping[str, int], stream: ServerStream) -> None:
    for i in range(request["n"]):
        await stream.send({"i": i})


@router.client_stream("total")
async def total(stream: ServerStream) -> int:
    return sum([chunk async for chunk in stream])


@router.bidi("echo")
async def echo(stream: ServerStream) -> None:
    async for chunk in stream:
        await stream.send(chunk)


@router.bidi("count_back")
async def count_back(stream: ServerStream) -> int:
    seen = 0
    async for _ in stream:
        seen += 1
    return seen


@router.unary("boom")
async def boom(request: object) -> None:
    raise RuntimeError("the disk is on fire")


@router.unary("picky")
async def picky(request: object) -> None:
    raise StreamError(StatusCode.INVALID_ARGUMENT, "no thanks", {"field": "x"})


@router.unary("slow")
async def slow(request: object) -> None:
    try:
        await trio.sleep(3600)
    finally:
        handler_log.append("slow cancelled")


@router.server_stream("forever")
async def forever(request: object, stream: ServerStream) -> None:
    try:
        await trio.sleep_forever()
    finally:
        handler_log.append("forever cancelled")


@router.server_stream("returns_value")
async def returns_value(request: object, stream: ServerStream) -> int:
    return 1


@pytest.fixture(autouse=True)
def _clear_log() -> None:
    handler_log.clear()


async def test_unary_reply_reaches_client() -> None:
    async with open_local(router, "add", mode="unary") as s:
        await s.send({"a": 2, "b": 3})
        assert await s.await_reply() == 5


async def test_handler_sees_method_and_metadata() -> None:
    async with open_local(router, "whoami", mode="unary", metadata={"token": "t1"}) as s:
        await s.send(None)
        assert await s.await_reply() == {"method": "whoami", "metadata": {"token": "t1"}, "id": 1}


async def test_server_stream_chunks_then_end() -> None:
    async with open_local(router, "ticks", mode="server_stream") as s:
        await s.send({"n": 4})
        assert [chunk async for chunk in s] == [{"i": i} for i in range(4)]


async def test_client_stream_replies_once_with_return_value() -> None:
    async with open_local(router, "total", mode="client_stream") as s:
        for i in range(10):
            await s.send(i)
        await s.close_send()
        assert await s.await_reply() == 45


async def test_bidi_handler_returning_none_ends_with_end() -> None:
    async with open_local(router, "echo", mode="bidi") as s:
        for i in range(3):
            await s.send(i)
            assert await s.recv() == i
        await s.close_send()
        with pytest.raises(trio.EndOfChannel):
            await s.recv()


async def test_bidi_handler_returning_value_replies() -> None:
    async with open_local(router, "count_back", mode="bidi") as s:
        for i in range(5):
            await s.send(i)
        await s.close_send()
        assert await s.await_reply() == 5


async def test_unknown_method_is_not_found() -> None:
    async with open_local(router, "nope", mode="unary") as s:
        await s.send(1)
        with pytest.raises(StreamError) as info:
            await s.await_reply()
    assert info.value.code is StatusCode.NOT_FOUND
    assert "nope" in info.value.message


async def test_wrong_mode_is_unimplemented() -> None:
    async with open_local(router, "add", mode="bidi") as s:
        with pytest.raises(StreamError) as info:
            await s.recv()
    assert info.value.code is StatusCode.UNIMPLEMENTED
    assert "unary" in info.value.message and "bidi" in info.value.message


async def test_handler_exception_is_internal_with_message_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with open_local(router, "boom", mode="unary") as s:
        await s.send(None)
        with pytest.raises(StreamError) as info:
            await s.await_reply()
    assert info.value.code is StatusCode.INTERNAL
    assert info.value.message == "the disk is on fire"
    assert "Traceback" not in info.value.message and not info.value.details
    assert "handler boom failed" in caplog.text  # the traceback stays on the server's log


async def test_handler_stream_error_keeps_its_status_and_details() -> None:
    async with open_local(router, "picky", mode="unary") as s:
        await s.send(None)
        with pytest.raises(StreamError) as info:
            await s.await_reply()
    assert info.value == StreamError(StatusCode.INVALID_ARGUMENT, "no thanks", {"field": "x"})


async def test_server_stream_handler_returning_a_value_is_internal() -> None:
    async with open_local(router, "returns_value", mode="server_stream") as s:
        await s.send(None)
        with pytest.raises(StreamError) as info:
            await s.recv()
    assert info.value.code is StatusCode.INTERNAL
    assert "returns None" in info.value.message


async def test_deadline_exceeded_on_both_sides_and_handler_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    start = trio.current_time()
    async with open_local(router, "slow", mode="unary", deadline=2.5) as s:
        await s.send(None)
        with pytest.raises(StreamError) as info:
            await s.await_reply()
    assert info.value.code is StatusCode.DEADLINE_EXCEEDED
    assert "2.5" in info.value.message
    assert trio.current_time() - start == pytest.approx(2.5)
    assert handler_log == ["slow cancelled"]


async def test_client_abort_cancels_handler(autojump_clock: trio.testing.MockClock) -> None:
    async with open_local(router, "forever", mode="server_stream") as s:
        await s.send(None)
        await trio.sleep(1)
        await s.abort(StatusCode.CANCELLED, "user pressed stop")
    assert handler_log == ["forever cancelled"]


async def test_client_block_raising_cancels_handler(autojump_clock: trio.testing.MockClock) -> None:
    with pytest.raises(KeyError):
        async with open_local(router, "forever", mode="server_stream") as s:
            await s.send(None)
            await trio.sleep(1)
            raise KeyError("client bug")
    assert handler_log == ["forever cancelled"]


async def test_client_close_before_end_cancels_handler(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_local(router, "forever", mode="server_stream") as s:
        await s.send(None)
        await trio.sleep(1)
    assert handler_log == ["forever cancelled"]


async def test_gate_refusal_reaches_client_before_handler_runs() -> None:
    calls: list[str] = []

    async def gate(method: str, metadata: Mapping[str, str]) -> None:
        calls.append(method)
        if metadata.get("token") != "secret":
            raise StreamError(StatusCode.UNAUTHENTICATED, "bad token")

    guarded = Router(gate=gate)

    @guarded.unary("hello")
    async def hello(request: str) -> str:
        return f"hello {request}"

    async with open_local(guarded, "hello", mode="unary", metadata={"token": "x"}) as s:
        await s.send("bob")
        with pytest.raises(StreamError) as info:
            await s.await_reply()
    assert info.value == StreamError(StatusCode.UNAUTHENTICATED, "bad token")
    async with open_local(guarded, "hello", mode="unary", metadata={"token": "secret"}) as s:
        await s.send("bob")
        assert await s.await_reply() == "hello bob"
    assert calls == ["hello", "hello"]


class RecordingLink:
    """A PeerLink that keeps what the server stream delivers, as a carrier would send it."""

    def __init__(self) -> None:
        self.errors: list[StreamError] = []
        self.replies: list[bytes] = []

    def deliver_chunk(self, payload: bytes) -> None:
        raise AssertionError("no chunk expected")

    def deliver_end(self) -> None:
        raise AssertionError("no END expected")

    def deliver_error(self, error: StreamError) -> None:
        self.errors.append(error)

    def deliver_reply(self, payload: bytes) -> None:
        self.replies.append(payload)

    def grant_credit(self, increment: int) -> None:
        pass


async def test_unary_peer_ending_without_request_gets_invalid_argument() -> None:
    server = Stream(id=2, role=Role.SERVER, mode=Mode.UNARY)
    link = RecordingLink()
    server.link(link, window=DEFAULT_WINDOW, max_chunk_size=1024)
    server.deliver_end()  # a wire peer that skipped its request
    call = CallInfo("add", Mode.UNARY, Encoding.CBOR)
    with trio.fail_after(5):
        await serve_stream(router, server, call)
    assert [e.code for e in link.errors] == [StatusCode.INVALID_ARGUMENT]
    assert "no request" in link.errors[0].message
    assert link.replies == []


async def test_raw_encoding_round_trip() -> None:
    raw = Router()

    @raw.bidi("upper")
    async def upper(stream: ServerStream) -> None:
        async for chunk in stream:
            await stream.send(chunk.upper())

    async with open_local(raw, "upper", mode="bidi", encoding="raw") as s:
        await s.send(b"abc")
        assert await s.recv() == b"ABC"
        await s.close_send()
        with pytest.raises(trio.EndOfChannel):
            await s.recv()


async def test_nonpositive_deadline_is_refused() -> None:
    with pytest.raises(ValueError, match="deadline"):
        async with open_local(router, "add", mode="unary", deadline=0):
            pass


async def test_each_stream_logs_one_line_at_open_and_one_at_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="streamlet.streams")
    async with open_local(router, "total", mode="client_stream") as s:
        for i in (1, 2, 3):
            await s.send(i)
        await s.close_send()
        assert await s.await_reply() == 6
    async with open_local(router, "picky", mode="unary") as s:
        await s.send(None)
        with pytest.raises(StreamError):
            await s.await_reply()
    lines = [r.getMessage() for r in caplog.records if r.name == "streamlet.streams"]
    assert lines[0] == "stream 1 open: total (client_stream)"
    assert lines[1].startswith("stream 1 end: total (client_stream) OK, in 3 chunks ")
    assert ", out 0 chunks 0 B, " in lines[1] and lines[1].endswith(" s")
    assert lines[2] == "stream 1 open: picky (unary)"
    assert lines[3].startswith("stream 1 end: picky (unary) INVALID_ARGUMENT 'no thanks', in 1")
    assert len(lines) == 4


async def test_stream_end_line_names_the_clients_cancel(
    caplog: pytest.LogCaptureFixture, autojump_clock: trio.testing.MockClock
) -> None:
    caplog.set_level(logging.INFO, logger="streamlet.streams")
    async with open_local(router, "forever", mode="server_stream") as s:
        await s.send(None)
        await trio.sleep(1)
        await s.abort(StatusCode.CANCELLED, "user pressed stop")
    (end,) = [r.getMessage() for r in caplog.records if " end: " in r.getMessage()]
    assert "CANCELLED 'user pressed stop'" in end


async def test_unary_call_gets_the_default_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    start = trio.current_time()
    async with open_local(router, "slow", mode="unary") as s:
        await s.send(None)
        with pytest.raises(StreamError) as info:
            await s.await_reply()
    assert info.value.code is StatusCode.DEADLINE_EXCEEDED
    assert trio.current_time() - start == pytest.approx(DEFAULT_UNARY_DEADLINE)


async def test_unary_call_over_a_connection_gets_the_default_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    start = trio.current_time()
    settings = ConnectionSettings(ping_interval=None)
    async with (
        open_memory_connection(router, settings=settings) as peer,
        peer.open_stream("slow", mode="unary") as s,
    ):
        await s.send(None)
        with pytest.raises(StreamError) as info:
            await s.await_reply()
    assert info.value.code is StatusCode.DEADLINE_EXCEEDED
    assert trio.current_time() - start == pytest.approx(DEFAULT_UNARY_DEADLINE, abs=1)


async def test_streams_and_explicit_none_have_no_default_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_local(router, "forever", mode="server_stream") as s:
        await s.send(None)
        with trio.move_on_after(10 * DEFAULT_UNARY_DEADLINE) as waited:
            await s.recv()
        assert waited.cancelled_caught  # still running: no deadline ended it
    async with open_local(router, "slow", mode="unary", deadline=None) as s:
        await s.send(None)
        with trio.move_on_after(10 * DEFAULT_UNARY_DEADLINE) as waited:
            await s.await_reply()
        assert waited.cancelled_caught
