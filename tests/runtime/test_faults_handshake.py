"""Handshake faults and hostile bytes: each ends that connection cleanly, never the server.

A raw peer speaks frames (or garbage) straight to a carrier; the carrier must
answer with a BYE that says why where it can, raise a clear `HandshakeError`
or `PeerProtocolError`, and keep serving other connections.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import cbor2
import pytest
import trio
import trio.testing
from streamlet.codec import (
    HEADER,
    ByePayload,
    Flags,
    Frame,
    FrameDecoder,
    FrameEncoder,
    FrameKind,
    Side,
    StatusCode,
)
from streamlet.runtime.carrier_errors import HandshakeError, PeerProtocolError
from streamlet.runtime.endpoints import connect, connect_tcp, serve, serve_tcp
from streamlet.runtime.router import Router
from streamlet.runtime.settings import ConnectionSettings


def make_router() -> Router:
    router = Router()

    @router.unary("ping")
    async def ping(request: Any) -> Any:
        return "pong"

    return router


class RawPeer:
    """A hand-driven end of a connection: sends any bytes, reads frames with the codec."""

    def __init__(self, byte_stream: trio.abc.Stream, side: Side) -> None:
        self.byte_stream = byte_stream
        self.encoder = FrameEncoder(side)
        self.decoder = FrameDecoder(side)

    async def send(self, frame: Frame) -> None:
        await self.byte_stream.send_all(self.encoder.encode(frame))

    async def send_bytes(self, data: bytes) -> None:
        await self.byte_stream.send_all(data)

    async def receive_frame(self) -> Frame | None:
        """The next frame, or None at EOF."""
        while (frame := self.decoder.next_frame()) is None:
            try:
                data = await self.byte_stream.receive_some()
            except trio.BrokenResourceError:
                return None
            if not data:
                return None
            self.decoder.receive_data(data)
        return frame

    async def receive_bye(self) -> ByePayload:
        frame = await self.receive_frame()
        assert frame is not None, "expected a BYE, got EOF"
        assert frame.kind is FrameKind.BYE, f"expected a BYE, got {frame!r}"
        return ByePayload.decode(frame.payload)

    async def expect_eof(self) -> None:
        assert await self.byte_stream.receive_some() == b""


def hello(version: int = 1) -> Frame:
    """A HELLO with the default settings, claiming `version`."""
    fields = cbor2.loads(ConnectionSettings().hello().encode()) | {"version": version}
    return Frame(FrameKind.HELLO, Flags.NONE, 0, cbor2.dumps(fields))


def raw_header(length: int, kind: int, *, reserved: int = 0, stream_id: int = 0) -> bytes:
    """A frame header with any values, legal or not."""
    return HEADER.pack(length, kind, 0, reserved, stream_id)


async def serve_expecting(
    server_end: trio.abc.Stream, error_type: type[Exception], box: list[Any]
) -> None:
    """Serve one connection that must fail with `error_type`; keep the error in `box`."""
    with pytest.raises(error_type) as caught:
        await serve(make_router(), server_end)
    box.append(caught.value)


async def test_version_mismatch_is_refused_with_bye_on_both_sides() -> None:
    client_end, server_end = trio.testing.memory_stream_pair()
    raw = RawPeer(client_end, Side.CONNECTOR)
    errors: list[Any] = []
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve_expecting, server_end, HandshakeError, errors)
            await raw.send(hello(version=2))
            bye = await raw.receive_bye()
            await raw.expect_eof()
    assert bye.code is StatusCode.FAILED_PRECONDITION
    assert "peer speaks version 2, this side speaks 1" in bye.reason
    assert errors[0].code is StatusCode.FAILED_PRECONDITION
    assert "handshake failed: unsupported protocol version" in str(errors[0])


async def test_connector_hears_the_servers_version_refusal() -> None:
    """A server that answers with another version's HELLO_ACK is refused by the connector."""
    client_end, server_end = trio.testing.memory_stream_pair()
    raw = RawPeer(server_end, Side.ACCEPTOR)

    async def old_server() -> None:
        frame = await raw.receive_frame()
        assert frame is not None and frame.kind is FrameKind.HELLO
        ack = cbor2.loads(frame.payload) | {"version": 7}
        await raw.send(Frame(FrameKind.HELLO_ACK, Flags.NONE, 0, cbor2.dumps(ack)))
        bye = await raw.receive_bye()
        assert bye.code is StatusCode.FAILED_PRECONDITION
        assert "peer speaks version 7" in bye.reason

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(old_server)
            with pytest.raises(HandshakeError, match="peer speaks version 7, this side speaks 1"):
                async with connect(client_end):
                    pytest.fail("the handshake should not have succeeded")


async def test_first_frame_not_hello_is_refused() -> None:
    client_end, server_end = trio.testing.memory_stream_pair()
    raw = RawPeer(client_end, Side.CONNECTOR)
    errors: list[Any] = []
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve_expecting, server_end, HandshakeError, errors)
            await raw.send(Frame(FrameKind.PING, Flags.NONE, 0, b"12345678"))
            bye = await raw.receive_bye()
    assert bye.code is StatusCode.FAILED_PRECONDITION
    assert bye.reason == "expected HELLO as the first frame, got PING"
    assert str(errors[0]) == "handshake failed: expected HELLO as the first frame, got PING"


async def test_connector_refused_by_bye_reports_the_peers_reason() -> None:
    client_end, server_end = trio.testing.memory_stream_pair()
    raw = RawPeer(server_end, Side.ACCEPTOR)

    async def refusing_server() -> None:
        await raw.receive_frame()
        bye = ByePayload(StatusCode.RESOURCE_EXHAUSTED, "too many connections")
        await raw.send(Frame(FrameKind.BYE, Flags.NONE, 0, bye.encode()))

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(refusing_server)
            with pytest.raises(HandshakeError) as caught:
                async with connect(client_end):
                    pytest.fail("the handshake should not have succeeded")
    assert caught.value.code is StatusCode.RESOURCE_EXHAUSTED
    assert str(caught.value) == (
        "handshake failed: the peer refused the connection: "
        "RESOURCE_EXHAUSTED: too many connections"
    )


async def test_handshake_times_out_on_a_silent_peer(autojump_clock: trio.testing.MockClock) -> None:
    client_end, _server_end = trio.testing.memory_stream_pair()
    start = trio.current_time()
    with trio.fail_after(100), pytest.raises(HandshakeError) as caught:
        async with connect(client_end, settings=ConnectionSettings(handshake_timeout=3)):
            pytest.fail("the handshake should not have succeeded")
    assert str(caught.value) == "handshake failed: no HELLO_ACK from the peer within 3 s"
    assert caught.value.code is StatusCode.DEADLINE_EXCEEDED
    assert trio.current_time() - start == pytest.approx(3.0)


async def test_peer_closing_during_the_handshake_is_a_clear_error() -> None:
    client_end, server_end = trio.testing.memory_stream_pair()
    await server_end.aclose()
    with trio.fail_after(5), pytest.raises(HandshakeError, match="handshake failed: the"):
        async with connect(client_end):
            pytest.fail("the handshake should not have succeeded")


FRAMING = "malformed handshake from the peer: "
# Bytes a hostile first peer sends, and how the refusal's reason starts.
HOSTILE = {
    "garbage": (b"\xde\xad\xbe\xef" * 8, FRAMING),
    "length_below_header": (raw_header(8, FrameKind.HELLO), FRAMING),
    "oversized": (raw_header(2**31, FrameKind.HELLO), FRAMING),
    "unknown_kind": (raw_header(16, 0x7F), FRAMING),
    "malformed_hello": (
        raw_header(20, FrameKind.HELLO) + b"\xff\xff\xff\xff",
        "malformed HELLO: control payload: malformed CBOR",
    ),
    "truncated": (raw_header(100, FrameKind.HELLO) + b"\xa0" * 10, FRAMING),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_hostile_first_bytes_are_refused_and_the_server_keeps_serving(name: str) -> None:
    data, expected = HOSTILE[name]
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(serve_tcp, host="127.0.0.1"), make_router(), 0)
            port = listeners[0].socket.getsockname()[1]
            async with await trio.open_tcp_stream("127.0.0.1", port) as sock:
                raw = RawPeer(sock, Side.CONNECTOR)
                await raw.send_bytes(data)
                if name == "truncated":
                    await sock.send_eof()
                frame = await raw.receive_frame()
                if frame is not None:  # the BYE, when the connection still allowed it
                    bye = ByePayload.decode(frame.payload)
                    assert bye.code is StatusCode.INTERNAL
                    assert bye.reason.startswith(expected)
                    assert await raw.receive_frame() is None
            async with connect_tcp("127.0.0.1", port) as peer:  # the server is still there
                assert await peer.call_unary("ping", None) == "pong"
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_hostile_first_bytes_raise_a_clear_error_from_serve(name: str) -> None:
    client_end, server_end = trio.testing.memory_stream_pair()
    errors: list[Any] = []
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve_expecting, server_end, HandshakeError, errors)
            data, expected = HOSTILE[name]
            await client_end.send_all(data)
            await client_end.send_eof()
    assert str(errors[0]).startswith("handshake failed: " + expected)
    assert errors[0].code is StatusCode.INTERNAL


async def test_garbage_after_the_handshake_ends_the_connection_with_bye() -> None:
    client_end, server_end = trio.testing.memory_stream_pair()
    raw = RawPeer(client_end, Side.CONNECTOR)
    errors: list[Any] = []
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve_expecting, server_end, PeerProtocolError, errors)
            await raw.send(hello())
            ack = await raw.receive_frame()
            assert ack is not None and ack.kind is FrameKind.HELLO_ACK
            await raw.send_bytes(raw_header(16, FrameKind.STREAM_END, stream_id=0))
            bye = await raw.receive_bye()
    assert bye.code is StatusCode.INTERNAL
    assert "STREAM_END" in bye.reason and "stream_id=0" in bye.reason
    assert str(errors[0]).startswith("protocol error from the peer:")


async def test_a_hello_window_too_small_for_one_chunk_is_refused() -> None:
    client_end, server_end = trio.testing.memory_stream_pair()
    raw = RawPeer(client_end, Side.CONNECTOR)
    errors: list[Any] = []
    fields = cbor2.loads(ConnectionSettings().hello().encode())
    fields |= {"initial_window": 8, "max_chunk_size": 8}
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve_expecting, server_end, HandshakeError, errors)
            await raw.send(Frame(FrameKind.HELLO, Flags.NONE, 0, cbor2.dumps(fields)))
            bye = await raw.receive_bye()
    assert bye.code is StatusCode.INTERNAL
    assert bye.reason == "malformed HELLO: HELLO.initial_window: 8 is outside [16, 2147483647]"
    assert errors[0].code is StatusCode.INTERNAL
