"""Stream-id connection state and per-stream reassembly, one test per rule."""

from __future__ import annotations

import pytest
from streamlet.codec import (
    MAX_STREAM_ID,
    CreditPayload,
    ErrorPayload,
    Flags,
    Frame,
    FrameEncoder,
    FrameKind,
    ProtocolError,
    Reason,
    Reassembler,
    Side,
    StatusCode,
    StreamIds,
    opener_of,
)

MAX = 16 * 1024


def test_connector_opens_odd_ids_and_acceptor_even_ids() -> None:
    connector, acceptor = StreamIds(Side.CONNECTOR), StreamIds(Side.ACCEPTOR)
    assert [connector.open_local() for _ in range(3)] == [1, 3, 5]
    assert [acceptor.open_local() for _ in range(3)] == [2, 4, 6]
    assert opener_of(5) is Side.CONNECTOR and opener_of(6) is Side.ACCEPTOR


def test_local_ids_run_out_at_2_64() -> None:
    ids = StreamIds(Side.CONNECTOR, last_local=MAX_STREAM_ID)
    with pytest.raises(ProtocolError) as caught:
        ids.open_local()
    assert caught.value.reason is Reason.STREAM_IDS_EXHAUSTED


def test_peer_open_must_increase() -> None:
    ids = StreamIds(Side.ACCEPTOR)
    ids.accept_peer_open(1)
    ids.accept_peer_open(7)
    for stale in (7, 5):
        with pytest.raises(ProtocolError) as caught:
            ids.accept_peer_open(stale)
        assert caught.value.reason is Reason.STREAM_ID_REUSED
        assert f"stream_id={stale}" in str(caught.value)


def test_peer_open_with_our_parity_is_refused() -> None:
    with pytest.raises(ProtocolError) as caught:
        StreamIds(Side.ACCEPTOR).accept_peer_open(4)
    assert caught.value.reason is Reason.WRONG_SENDER


def test_frame_for_a_never_opened_stream_is_refused() -> None:
    ids = StreamIds(Side.ACCEPTOR)
    ids.accept_peer_open(3)
    ids.open_local()
    ids.check_known(FrameKind.STREAM_CHUNK, 0, 3)  # opened by the peer
    ids.check_known(FrameKind.STREAM_CHUNK, 0, 1)  # skipped by the peer: closed, not unknown
    ids.check_known(FrameKind.STREAM_CREDIT, 0, 2)  # opened by us
    for unknown in (5, 4):
        with pytest.raises(ProtocolError) as caught:
            ids.check_known(FrameKind.STREAM_CHUNK, 0, unknown)
        assert caught.value.reason is Reason.STREAM_NOT_OPENED


def chunks(message: bytes, fin: bool = False, stream_id: int = 1) -> list[Frame]:
    return FrameEncoder(Side.CONNECTOR, MAX).fragment(
        FrameKind.STREAM_CHUNK, stream_id, message, fin=fin
    )


def test_single_frame_message_passes_through_without_a_copy() -> None:
    frame = Frame(FrameKind.STREAM_CHUNK, Flags.FIN, 1, b"abc")
    assert Reassembler(1, 10).feed(frame) is frame


def test_fragments_join_and_fin_comes_from_the_last() -> None:
    message = bytes(range(256)) * 200
    frames = chunks(message, fin=True)
    assert len(frames) == 4
    reassembler = Reassembler(1, len(message))
    assert [reassembler.feed(frame) for frame in frames[:-1]] == [None, None, None]
    assert reassembler.in_message
    joined = reassembler.feed(frames[-1])
    assert joined == Frame(FrameKind.STREAM_CHUNK, Flags.FIN, 1, message)
    assert not reassembler.in_message


def test_message_over_the_bound_is_refused_before_buffering_it() -> None:
    frames = chunks(bytes(3 * MAX))
    reassembler = Reassembler(1, MAX)
    assert reassembler.feed(frames[0]) is None
    with pytest.raises(ProtocolError) as caught:
        reassembler.feed(frames[1])
    assert caught.value.reason is Reason.MESSAGE_TOO_LARGE
    assert "kind=STREAM_CHUNK" in str(caught.value) and "stream_id=1" in str(caught.value)
    assert reassembler.buffered_size == 0


def test_unfragmented_message_over_the_bound_is_refused() -> None:
    with pytest.raises(ProtocolError) as caught:
        Reassembler(1, 2).feed(Frame(FrameKind.STREAM_REPLY, Flags.NONE, 1, b"abc"))
    assert caught.value.reason is Reason.MESSAGE_TOO_LARGE


@pytest.mark.parametrize(
    "intruder",
    [
        Frame(FrameKind.STREAM_END, Flags.NONE, 1),
        Frame(FrameKind.STREAM_REPLY, Flags.NONE, 1, b"r"),
        Frame(FrameKind.STREAM_OPEN, Flags.NONE, 1, b"\xa0"),
    ],
)
def test_other_kind_in_the_middle_of_a_fragmented_message_is_refused(intruder: Frame) -> None:
    reassembler = Reassembler(1, 10 * MAX)
    reassembler.feed(chunks(bytes(2 * MAX))[0])
    with pytest.raises(ProtocolError) as caught:
        reassembler.feed(intruder)
    assert caught.value.reason is Reason.INTERLEAVED_FRAGMENT
    assert f"kind={intruder.kind.name}" in str(caught.value)


def test_credit_may_arrive_in_the_middle_of_a_fragmented_message() -> None:
    frames = chunks(bytes(2 * MAX))
    credit = Frame(FrameKind.STREAM_CREDIT, Flags.NONE, 1, CreditPayload(5).encode())
    reassembler = Reassembler(1, 10 * MAX)
    assert reassembler.feed(frames[0]) is None
    assert reassembler.feed(credit) is credit
    assert [reassembler.feed(frame) for frame in frames[1:]][-1] is not None


def test_error_in_the_middle_of_a_fragmented_message_discards_it() -> None:
    frames = chunks(bytes(2 * MAX))
    error = Frame(
        FrameKind.STREAM_ERROR, Flags.NONE, 1, ErrorPayload(StatusCode.CANCELLED).encode()
    )
    reassembler = Reassembler(1, 10 * MAX)
    reassembler.feed(frames[0])
    assert reassembler.feed(error) is error
    assert reassembler.buffered_size == 0 and not reassembler.in_message


def test_fragments_of_other_streams_interleave_through_their_own_reassemblers() -> None:
    first, second = chunks(bytes(2 * MAX), stream_id=1), chunks(b"\x01" * (2 * MAX), stream_id=3)
    reassemblers = {1: Reassembler(1, 10 * MAX), 3: Reassembler(3, 10 * MAX)}
    delivered = [
        out
        for frame in (first[0], second[0], first[1], second[1], second[2], first[2])
        if (out := reassemblers[frame.stream_id].feed(frame)) is not None
    ]
    assert [(f.stream_id, bytes(f.payload)) for f in delivered] == [
        (3, b"\x01" * (2 * MAX)),
        (1, bytes(2 * MAX)),
    ]


def test_fragment_puts_fin_only_on_the_last_frame() -> None:
    frames = chunks(bytes(3 * MAX), fin=True)
    assert [frame.flags for frame in frames] == [Flags.MORE_FRAMES] * 3 + [Flags.FIN]
    assert all(len(frame.payload) <= MAX - 16 for frame in frames)


def test_fragment_refuses_non_data_kinds() -> None:
    with pytest.raises(ValueError, match="stream data"):
        FrameEncoder(Side.CONNECTOR).fragment(FrameKind.STREAM_OPEN, 1, b"x")
