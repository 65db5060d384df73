"""The connection handshake: HELLO from the connector, HELLO_ACK from the acceptor, with a timeout.

Each side's first frame carries its settings; anything else first (another
kind, garbage, another protocol version, a window too small to carry one
chunk) ends the connection before any stream exists: this side answers with a
BYE saying why, where the connection still allows it, and raises
`HandshakeError`. A peer that refuses us with a BYE of its own is reported
with its code and reason.
"""

from __future__ import annotations

import contextlib

import trio
from streamlet.codec import (
    MAX_MESSAGE_BYTES,
    ByePayload,
    Flags,
    Frame,
    FrameDecoder,
    FrameEncoder,
    FrameKind,
    HelloAckPayload,
    HelloPayload,
    ProtocolError,
    Side,
    StatusCode,
    check_version,
)

from .carrier_errors import HandshakeError, describe_transport_error
from .settings import ConnectionSettings

RECEIVE_SIZE = 64 * 1024
BYE_TIMEOUT = 1.0  # how long a best-effort BYE may take before the connection is dropped


class _Refusal(Exception):
    """This side refuses the peer's handshake: the BYE to send, and the error to raise."""

    def __init__(self, code: StatusCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


async def handshake(
    transport: trio.abc.Stream,
    decoder: FrameDecoder,
    encoder: FrameEncoder,
    settings: ConnectionSettings,
) -> HelloPayload:
    """Exchange HELLO / HELLO_ACK on `transport`; return the peer's settings.

    Raises `HandshakeError` with a clear message on every failure; the caller
    closes the transport. Bytes after the peer's handshake frame stay in
    `decoder` for the reader.
    """
    side = encoder.side
    expected = "HELLO_ACK" if side is Side.CONNECTOR else "HELLO"
    timeout = settings.handshake_timeout
    try:
        with trio.move_on_after(timeout):
            return await _exchange(transport, decoder, encoder, settings)
        reason = f"no {expected} from the peer within {timeout:g} s"
        await send_bye(transport, encoder, ByePayload(StatusCode.DEADLINE_EXCEEDED, reason))
        raise HandshakeError(f"handshake failed: {reason}", code=StatusCode.DEADLINE_EXCEEDED)
    except _Refusal as refusal:
        await send_bye(transport, encoder, ByePayload(refusal.code, refusal.reason))
        raise HandshakeError(f"handshake failed: {refusal.reason}", code=refusal.code) from None
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        raise HandshakeError(
            f"handshake failed: the connection broke before the {expected}: "
            + describe_transport_error(exc)
        ) from exc


async def _exchange(
    transport: trio.abc.Stream,
    decoder: FrameDecoder,
    encoder: FrameEncoder,
    settings: ConnectionSettings,
) -> HelloPayload:
    if encoder.side is Side.CONNECTOR:
        hello = Frame(FrameKind.HELLO, Flags.NONE, 0, settings.hello().encode())
        await transport.send_all(encoder.encode(hello))
        return _accept(await _first_frame(transport, decoder), FrameKind.HELLO_ACK)
    peer = _accept(await _first_frame(transport, decoder), FrameKind.HELLO)
    ack = Frame(FrameKind.HELLO_ACK, Flags.NONE, 0, settings.hello_ack().encode())
    await transport.send_all(encoder.encode(ack))
    return peer


async def _first_frame(transport: trio.abc.Stream, decoder: FrameDecoder) -> Frame:
    try:
        while (frame := decoder.next_frame()) is None:
            data = await transport.receive_some(RECEIVE_SIZE)
            if not data:
                decoder.receive_eof()
                raise HandshakeError(
                    "handshake failed: the peer closed the connection before its "
                    + ("HELLO_ACK" if decoder.side is Side.CONNECTOR else "HELLO")
                )
            decoder.receive_data(data)
    except ProtocolError as exc:
        raise _Refusal(StatusCode.INTERNAL, f"malformed handshake from the peer: {exc}") from exc
    return frame


def _accept(frame: Frame, expected: FrameKind) -> HelloPayload:
    """Check the peer's first frame and return its settings, or refuse it."""
    if frame.kind is FrameKind.BYE:
        try:
            bye = ByePayload.decode(frame.payload)
        except ProtocolError as exc:
            raise HandshakeError(f"handshake failed: the peer sent a malformed BYE: {exc}") from exc
        raise HandshakeError(
            f"handshake failed: the peer refused the connection: {bye.code.name}: {bye.reason}",
            code=bye.code,
        )
    if frame.kind is not expected:
        raise _Refusal(
            StatusCode.FAILED_PRECONDITION,
            f"expected {expected.name} as the first frame, got {frame.kind.name}",
        )
    payload_type = HelloAckPayload if expected is FrameKind.HELLO_ACK else HelloPayload
    try:
        peer = payload_type.decode(frame.payload)
    except ProtocolError as exc:
        raise _Refusal(StatusCode.INTERNAL, f"malformed {expected.name}: {exc}") from exc
    try:
        check_version(peer)
    except ProtocolError as exc:
        raise _Refusal(
            StatusCode.FAILED_PRECONDITION, f"unsupported protocol version: {exc}"
        ) from exc
    return peer


def bye_frame(bye: ByePayload) -> Frame:
    """A BYE frame; a reason over the wire limit is cut at a character edge."""
    reason = bye.reason.encode()[:MAX_MESSAGE_BYTES].decode(errors="ignore")
    payload = ByePayload(bye.code, reason, bye.last_stream_id).encode()
    return Frame(FrameKind.BYE, Flags.NONE, 0, payload)


async def send_bye(transport: trio.abc.Stream, encoder: FrameEncoder, bye: ByePayload) -> None:
    """Write a BYE straight to the transport, best effort: a broken or stuck peer is skipped."""
    broken = (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError)
    with trio.move_on_after(BYE_TIMEOUT), contextlib.suppress(*broken):
        await transport.send_all(encoder.encode(bye_frame(bye)))
