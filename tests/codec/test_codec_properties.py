"""Properties of the codec over generated input: round trips, split independence, robustness."""

from __future__ import annotations

import contextlib
import itertools
from typing import Any

import cbor2
from hypothesis import given, settings
from hypothesis import strategies as st
from streamlet.codec import (
    CATALOG,
    HEADER_SIZE,
    Flags,
    Frame,
    FrameDecoder,
    FrameEncoder,
    FrameKind,
    PayloadRule,
    ProtocolError,
    Reassembler,
    Side,
    StreamIdRule,
    decode_cbor,
)
from streamlet.codec.safecbor import CONTROL_PROFILE, decode_cbor_bounded

MAX = 16 * 1024
EXAMPLES = settings(max_examples=300, deadline=None)


@st.composite
def legal_frames(draw: st.DrawFn, sender: Side) -> Frame:
    """Any frame `sender` may legally send."""
    sendable = [
        kind
        for kind, spec in CATALOG.items()
        if spec.sender_may_send(sender, 1) or spec.sender_may_send(sender, 2)
    ]
    spec = CATALOG[draw(st.sampled_from(sendable))]
    flags = Flags.NONE
    for flag in (Flags.MORE_FRAMES, Flags.FIN):
        if spec.allowed_flags & flag and not flags and draw(st.booleans()):
            flags = flag
    if spec.stream_id is StreamIdRule.ZERO:
        stream_id = 0
    else:
        stream_id = draw(st.integers(1, 2**64 - 1))
        if not spec.sender_may_send(sender, stream_id):
            stream_id = stream_id - 1 if stream_id > 1 else stream_id + 1
    if spec.payload is PayloadRule.EMPTY:
        payload = b""
    elif spec.payload is PayloadRule.EXACT:
        assert spec.payload_size is not None
        payload = draw(st.binary(min_size=spec.payload_size, max_size=spec.payload_size))
    else:
        minimum = 1 if spec.payload is PayloadRule.CBOR_MAP or flags & Flags.MORE_FRAMES else 0
        payload = draw(st.binary(min_size=minimum, max_size=300))
    return Frame(spec.kind, flags, stream_id, payload)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


@EXAMPLES
@given(st.sampled_from(list(Side)), st.data())
def test_legal_frames_round_trip(sender: Side, data: st.DataObject) -> None:
    frames = data.draw(st.lists(legal_frames(sender), max_size=20))
    encoder = FrameEncoder(sender, MAX)
    out = bytearray()
    for frame in frames:
        encoder.encode_into(out, frame)
    decoder = FrameDecoder(sender.peer, MAX)
    decoder.receive_data(out)
    assert list(decoder) == frames
    assert decoder.buffered_size == 0


@EXAMPLES
@given(st.data(), st.lists(st.integers(0, 10**6), max_size=30))
def test_decoded_frames_do_not_depend_on_how_the_stream_is_split(
    data: st.DataObject, cuts: list[int]
) -> None:
    frames = data.draw(st.lists(legal_frames(Side.CONNECTOR), max_size=15))
    encoder = FrameEncoder(Side.CONNECTOR, MAX)
    stream = b"".join(encoder.encode(frame) for frame in frames)
    decoder = FrameDecoder(Side.ACCEPTOR, MAX)
    out = []
    for piece in split(stream, cuts):
        decoder.receive_data(piece)
        out.extend(decoder)
    assert out == frames
    decoder.receive_eof()


def drain(decoder: FrameDecoder, pieces: list[bytes]) -> tuple[list[Frame], ProtocolError | None]:
    frames: list[Frame] = []
    try:
        for piece in pieces:
            decoder.receive_data(piece)
            frames.extend(decoder)
            # Never more than one incomplete frame is held after draining.
            assert decoder.buffered_size < decoder.max_frame_size
        decoder.receive_eof()
    except ProtocolError as error:
        return frames, error
    return frames, None


@EXAMPLES
@given(st.sampled_from(list(Side)), st.lists(st.binary(max_size=200), max_size=10))
def test_random_bytes_give_frames_or_protocol_error_and_stay_bounded(
    receiver: Side, pieces: list[bytes]
) -> None:
    decoder = FrameDecoder(receiver, MAX)
    frames, error = drain(decoder, pieces)
    if error is not None:
        assert decoder.buffered_size == 0
    assert all(HEADER_SIZE + len(frame.payload) <= MAX for frame in frames)


@EXAMPLES
@given(st.data(), st.integers(0, 15), st.integers(0, 255))
def test_one_corrupted_byte_gives_frames_or_protocol_error(
    data: st.DataObject, position: int, value: int
) -> None:
    frames = data.draw(st.lists(legal_frames(Side.ACCEPTOR), min_size=1, max_size=5))
    stream = bytearray(b"".join(FrameEncoder(Side.ACCEPTOR, MAX).encode(f) for f in frames))
    stream[position] = value
    decoder = FrameDecoder(Side.CONNECTOR, MAX)
    drain(decoder, [bytes(stream)])
    assert decoder.buffered_size < MAX


@EXAMPLES
@given(
    st.binary(max_size=3 * MAX),
    st.booleans(),
    st.sampled_from([FrameKind.STREAM_CHUNK, FrameKind.STREAM_REPLY]),
)
def test_fragmented_message_round_trips(message: bytes, fin: bool, kind: FrameKind) -> None:
    sender = Side.ACCEPTOR  # a REPLY comes from the stream acceptor; stream 1 is the connector's
    encoder = FrameEncoder(sender, MAX)
    fin = fin and kind is FrameKind.STREAM_CHUNK
    frames = encoder.fragment(kind, 1, message, fin=fin)
    assert all(f.flags & Flags.MORE_FRAMES for f in frames[:-1])
    assert not frames[-1].flags & Flags.MORE_FRAMES
    assert all(not f.flags & Flags.FIN for f in frames[:-1])
    decoder = FrameDecoder(sender.peer, MAX)
    decoder.receive_data(b"".join(encoder.encode(frame) for frame in frames))
    reassembler = Reassembler(1, len(message))
    delivered = [out for frame in decoder if (out := reassembler.feed(frame)) is not None]
    assert len(delivered) == 1
    assert bytes(delivered[0].payload) == message
    assert delivered[0].flags == (Flags.FIN if fin else Flags.NONE)
    assert reassembler.buffered_size == 0


cbor_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.text(max_size=8) | st.binary(max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
)


@EXAMPLES
@given(cbor_values)
def test_cbor_chunk_values_round_trip(value: Any) -> None:
    assert decode_cbor(cbor2.dumps(value)) == value


@EXAMPLES
@given(st.binary(max_size=300))
def test_hostile_cbor_raises_nothing_but_protocol_error(data: bytes) -> None:
    for decode in (decode_cbor, lambda d: decode_cbor_bounded(d, CONTROL_PROFILE)):
        with contextlib.suppress(ProtocolError):
            decode(data)


@EXAMPLES
@given(st.integers(0, 2**16), st.sampled_from([0x80, 0xA0, 0x40, 0x60]), st.binary(max_size=50))
def test_tagged_or_oversized_cbor_raises_nothing_but_protocol_error(
    tag: int, head: int, tail: bytes
) -> None:
    data = cbor2.dumps(cbor2.CBORTag(tag, None))[:-1] + bytes([head | 0x1B]) + tail
    with contextlib.suppress(ProtocolError):
        decode_cbor(data)
