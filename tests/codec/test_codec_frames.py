"""Frame-level rules, one test per rule: what the decoder and encoder refuse, and how."""

from __future__ import annotations

import pytest
from streamlet.codec import (
    HEADER,
    HEADER_SIZE,
    Flags,
    Frame,
    FrameDecoder,
    FrameEncoder,
    FrameKind,
    ProtocolError,
    Reason,
    Side,
)

MAX = 16 * 1024


def header(length: int, kind: int, flags: int = 0, reserved: int = 0, stream_id: int = 1) -> bytes:
    return HEADER.pack(length, kind, flags, reserved, stream_id)


def refuse(data: bytes, receiver: Side = Side.ACCEPTOR) -> ProtocolError:
    decoder = FrameDecoder(receiver, MAX)
    decoder.receive_data(data)
    with pytest.raises(ProtocolError) as caught:
        list(decoder)
    return caught.value


def test_header_layout_is_little_endian_16_bytes() -> None:
    data = FrameEncoder(Side.CONNECTOR).encode(
        Frame(FrameKind.STREAM_CHUNK, Flags.FIN, 0x0102, b"ab")
    )
    assert HEADER_SIZE == 16
    assert data == bytes([18, 0, 0, 0, 0x02, 0x04, 0, 0, 0x02, 0x01, 0, 0, 0, 0, 0, 0]) + b"ab"


def test_length_over_max_is_refused_after_header() -> None:
    decoder = FrameDecoder(Side.ACCEPTOR, MAX)
    decoder.receive_data(header(2**32 - 1, FrameKind.STREAM_CHUNK, stream_id=5)[:15])
    assert decoder.next_frame() is None
    decoder.receive_data(header(2**32 - 1, FrameKind.STREAM_CHUNK, stream_id=5)[15:])
    with pytest.raises(ProtocolError) as caught:
        decoder.next_frame()
    error = caught.value
    assert error.reason is Reason.LENGTH_OVER_MAX
    assert "kind=STREAM_CHUNK" in str(error)
    assert "flags=0x00(none)" in str(error)
    assert "stream_id=5" in str(error)
    assert decoder.buffered_size == 0


def test_length_below_header_is_refused() -> None:
    error = refuse(header(8, FrameKind.STREAM_END))
    assert error.reason is Reason.LENGTH_BELOW_HEADER
    assert "kind=STREAM_END" in str(error)


def test_unknown_kind_is_refused_naming_the_byte() -> None:
    error = refuse(header(16, 0x42, stream_id=9))
    assert error.reason is Reason.UNKNOWN_KIND
    assert "kind=0x42" in str(error) and "stream_id=9" in str(error)
    assert error.kind == 0x42 and error.stream_id == 9


def test_nonzero_reserved_is_refused() -> None:
    assert refuse(header(16, FrameKind.STREAM_END, reserved=7)).reason is Reason.RESERVED_NONZERO


def test_unknown_flag_bits_are_refused() -> None:
    error = refuse(header(16, FrameKind.STREAM_END, flags=0x80))
    assert error.reason is Reason.UNKNOWN_FLAGS
    assert "flags=0x80(0x80)" in str(error)


def test_compressed_is_refused_until_implemented() -> None:
    error = refuse(header(17, FrameKind.STREAM_CHUNK, flags=0x01) + b"x")
    assert error.reason is Reason.COMPRESSED_UNSUPPORTED
    assert "COMPRESSED" in str(error)


@pytest.mark.parametrize(
    ("kind", "flags", "receiver", "stream_id"),
    [
        (FrameKind.STREAM_END, Flags.FIN, Side.ACCEPTOR, 1),
        (FrameKind.STREAM_OPEN, Flags.MORE_FRAMES, Side.ACCEPTOR, 1),
        (FrameKind.STREAM_REPLY, Flags.FIN, Side.CONNECTOR, 1),
        (FrameKind.STREAM_CREDIT, Flags.FIN, Side.ACCEPTOR, 1),
        (FrameKind.PING, Flags.MORE_FRAMES, Side.ACCEPTOR, 0),
    ],
)
def test_flag_the_kind_may_not_carry_is_refused(
    kind: FrameKind, flags: Flags, receiver: Side, stream_id: int
) -> None:
    error = refuse(header(24, kind, flags=flags, stream_id=stream_id) + bytes(8), receiver)
    assert error.reason is Reason.FLAGS_NOT_ALLOWED
    assert f"kind={kind.name}" in str(error) and f"stream_id={stream_id}" in str(error)


def test_more_frames_with_fin_is_refused() -> None:
    error = refuse(header(17, FrameKind.STREAM_CHUNK, flags=0x06) + b"x")
    assert error.reason is Reason.MORE_FRAMES_WITH_FIN
    assert "MORE_FRAMES|FIN" in str(error)


@pytest.mark.parametrize("kind", [FrameKind.PING, FrameKind.PONG, FrameKind.BYE, FrameKind.HELLO])
def test_connection_kind_on_a_stream_is_refused(kind: FrameKind) -> None:
    error = refuse(header(24, kind, stream_id=3) + bytes(8))
    assert error.reason is Reason.STREAM_ID_MUST_BE_ZERO


@pytest.mark.parametrize("kind", [kind for kind in FrameKind if kind < 0x10])
def test_stream_kind_on_stream_zero_is_refused(kind: FrameKind) -> None:
    error = refuse(header(20, kind, stream_id=0) + bytes(4))
    assert error.reason is Reason.STREAM_ID_MUST_BE_NONZERO


def test_open_from_peer_with_the_receivers_parity_is_refused() -> None:
    error = refuse(header(17, FrameKind.STREAM_OPEN, stream_id=2) + b"\xa0", Side.ACCEPTOR)
    assert error.reason is Reason.WRONG_SENDER
    assert "stream opener" in str(error)


def test_reply_from_the_stream_opener_is_refused() -> None:
    error = refuse(header(17, FrameKind.STREAM_REPLY, stream_id=1) + b"x", Side.ACCEPTOR)
    assert error.reason is Reason.WRONG_SENDER


def test_reply_from_the_stream_acceptor_is_accepted() -> None:
    decoder = FrameDecoder(Side.CONNECTOR, MAX)
    decoder.receive_data(header(17, FrameKind.STREAM_REPLY, stream_id=1) + b"x")
    assert list(decoder) == [Frame(FrameKind.STREAM_REPLY, Flags.NONE, 1, b"x")]


def test_hello_from_the_acceptor_is_refused() -> None:
    error = refuse(header(17, FrameKind.HELLO, stream_id=0) + b"\xa0", Side.CONNECTOR)
    assert error.reason is Reason.WRONG_SENDER


def test_hello_ack_from_the_connector_is_refused() -> None:
    error = refuse(header(17, FrameKind.HELLO_ACK, stream_id=0) + b"\xa0", Side.ACCEPTOR)
    assert error.reason is Reason.WRONG_SENDER


@pytest.mark.parametrize(
    ("kind", "size"),
    [
        (FrameKind.STREAM_END, 1),
        (FrameKind.STREAM_CREDIT, 3),
        (FrameKind.STREAM_CREDIT, 8),
        (FrameKind.STREAM_OPEN, 0),
        (FrameKind.STREAM_ERROR, 0),
    ],
)
def test_payload_of_the_wrong_size_is_refused(kind: FrameKind, size: int) -> None:
    error = refuse(header(16 + size, kind, stream_id=1) + bytes(size))
    assert error.reason is Reason.PAYLOAD_SIZE


@pytest.mark.parametrize("size", [0, 7, 9])
def test_ping_payload_must_be_exactly_8_bytes(size: int) -> None:
    error = refuse(header(16 + size, FrameKind.PING, stream_id=0) + bytes(size))
    assert error.reason is Reason.PAYLOAD_SIZE


def test_empty_more_frames_fragment_is_refused() -> None:
    assert refuse(header(16, FrameKind.STREAM_CHUNK, flags=0x02)).reason is Reason.EMPTY_FRAGMENT


def test_eof_in_the_middle_of_a_frame_is_truncation() -> None:
    decoder = FrameDecoder(Side.ACCEPTOR, MAX)
    decoder.receive_data(header(20, FrameKind.STREAM_CHUNK) + b"ab")
    assert decoder.next_frame() is None
    with pytest.raises(ProtocolError) as caught:
        decoder.receive_eof()
    assert caught.value.reason is Reason.TRUNCATED


def test_eof_between_frames_is_clean() -> None:
    decoder = FrameDecoder(Side.ACCEPTOR, MAX)
    decoder.receive_data(header(16, FrameKind.STREAM_END))
    assert len(list(decoder)) == 1
    decoder.receive_eof()
    assert decoder.error is None


def test_decoder_is_dead_after_an_error_and_repeats_it() -> None:
    decoder = FrameDecoder(Side.ACCEPTOR, MAX)
    decoder.receive_data(header(16, 0x42))
    with pytest.raises(ProtocolError) as first:
        decoder.next_frame()
    for call in (decoder.next_frame, lambda: decoder.receive_data(b"x"), decoder.receive_eof):
        with pytest.raises(ProtocolError) as again:
            call()
        assert again.value is first.value
    assert decoder.buffered_size == 0


def test_max_frame_size_can_be_raised_after_hello() -> None:
    decoder = FrameDecoder(Side.ACCEPTOR, MAX)
    frame = header(MAX + 16, FrameKind.STREAM_CHUNK) + bytes(MAX)
    decoder.max_frame_size = 2 * MAX
    decoder.receive_data(frame)
    assert [len(f.payload) for f in decoder] == [MAX]


def test_max_frame_size_outside_legal_range_is_rejected() -> None:
    with pytest.raises(ValueError, match="max frame size"):
        FrameDecoder(Side.ACCEPTOR, 1024)
    decoder = FrameDecoder(Side.ACCEPTOR)
    with pytest.raises(ValueError, match="max frame size"):
        decoder.max_frame_size = 2**24 + 1


def test_many_small_frames_in_one_read_all_come_out() -> None:
    one = header(20, FrameKind.STREAM_CREDIT, stream_id=2) + b"\x01\x00\x00\x00"
    decoder = FrameDecoder(Side.ACCEPTOR, MAX)
    decoder.receive_data(one * 20000 + one[:7])
    assert sum(1 for _ in decoder) == 20000
    assert decoder.buffered_size == 7


def test_encoder_refuses_a_frame_the_peer_would_refuse() -> None:
    encoder = FrameEncoder(Side.CONNECTOR, MAX)
    with pytest.raises(ProtocolError) as caught:
        encoder.encode(Frame(FrameKind.STREAM_REPLY, Flags.NONE, 1, b"x"))
    assert caught.value.reason is Reason.WRONG_SENDER
    assert "kind=STREAM_REPLY" in str(caught.value) and "stream_id=1" in str(caught.value)
    with pytest.raises(ProtocolError) as caught:
        encoder.encode(Frame(FrameKind.STREAM_CHUNK, Flags.NONE, 1, bytes(MAX)))
    assert caught.value.reason is Reason.LENGTH_OVER_MAX
    with pytest.raises(ProtocolError):
        encoder.encode(Frame(FrameKind.STREAM_END, Flags.NONE, 2**64, b""))


def test_encode_into_appends_to_the_callers_buffer() -> None:
    encoder = FrameEncoder(Side.ACCEPTOR, MAX)
    out = bytearray(b"prefix")
    frames = [
        Frame(FrameKind.STREAM_CHUNK, Flags.NONE, 2, b"a"),
        Frame(FrameKind.PING, Flags.NONE, 0, bytes(8)),
    ]
    for frame in frames:
        encoder.encode_into(out, frame)
    assert bytes(out) == b"prefix" + b"".join(encoder.encode(frame) for frame in frames)
    decoder = FrameDecoder(Side.CONNECTOR, MAX)
    decoder.receive_data(out[6:])
    assert list(decoder) == frames
