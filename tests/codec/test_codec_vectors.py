"""The golden vectors in specs/vectors/ against the codec, in both directions."""

from __future__ import annotations

import hashlib
import json
import pathlib
from typing import Any

import cbor2
import pytest
from streamlet.codec import (
    ByePayload,
    CreditPayload,
    ErrorPayload,
    Flags,
    Frame,
    FrameDecoder,
    FrameEncoder,
    FrameKind,
    HelloAckPayload,
    HelloPayload,
    OpenPayload,
    ProtocolError,
    Reassembler,
    Side,
    decode_cbor,
)

VECTORS = pathlib.Path(__file__).resolve().parents[2] / "specs" / "vectors"


def load(name: str) -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = json.loads((VECTORS / name).read_text())["vectors"]
    return vectors


def flags_of(names: list[str]) -> Flags:
    flags = Flags.NONE
    for name in names:
        flags |= Flags[name]
    return flags


PAYLOAD_CLASSES: dict[str, Any] = {
    "HELLO": HelloPayload,
    "HELLO_ACK": HelloAckPayload,
    "STREAM_OPEN": OpenPayload,
    "STREAM_ERROR": ErrorPayload,
    "STREAM_CREDIT": CreditPayload,
    "BYE": ByePayload,
}


def decode_named_payload(payload: str, data: bytes) -> Any:
    if payload == "cbor chunk":
        return decode_cbor(data)
    return PAYLOAD_CLASSES[payload].decode(data)


@pytest.mark.parametrize("vector", load("frames_valid.json"), ids=lambda v: v["name"])
def test_valid_vector_decodes_to_its_frames_and_encodes_back(vector: dict[str, Any]) -> None:
    receiver = Side(vector["receiver"])
    decoder = FrameDecoder(receiver, vector["max_frame_size"])
    decoder.receive_data(bytes.fromhex(vector["hex"]))
    decoded = list(decoder)
    expected = [
        Frame(
            FrameKind[entry["kind"]],
            flags_of(entry["flags"]),
            entry["stream_id"],
            bytes.fromhex(entry["payload_hex"]),
        )
        for entry in vector["frames"]
    ]
    assert decoded == expected
    assert all(
        int(frame.kind) == entry["kind_byte"]
        for frame, entry in zip(decoded, vector["frames"], strict=True)
    )
    encoder = FrameEncoder(receiver.peer, vector["max_frame_size"])
    assert b"".join(encoder.encode(frame) for frame in expected).hex() == vector["hex"]
    for frame, entry in zip(decoded, vector["frames"], strict=True):
        meaning = entry.get("meaning")
        if meaning is None:
            continue
        if "payload" in meaning:
            parsed = PAYLOAD_CLASSES[meaning["payload"]].decode(frame.payload)
            assert parsed.encode() == frame.payload
            if meaning["payload"] == "STREAM_CREDIT":
                assert parsed.increment == meaning["fields"]["increment"]
            else:
                assert cbor2.loads(frame.payload) == meaning["fields"]
        elif meaning.get("encoding") == "cbor":
            assert decode_cbor(frame.payload) == meaning["value"]
        elif "opaque_hex" in meaning:
            assert frame.payload.hex() == meaning["opaque_hex"]


@pytest.mark.parametrize("vector", load("frames_malformed.json"), ids=lambda v: v["name"])
def test_malformed_vector_is_refused_with_its_reason(vector: dict[str, Any]) -> None:
    decoder = FrameDecoder(Side(vector["receiver"]), vector["max_frame_size"])
    decoder.receive_data(bytes.fromhex(vector["hex"]))
    frames = []
    with pytest.raises(ProtocolError) as caught:
        while (frame := decoder.next_frame()) is not None:
            frames.append(frame)
        assert vector["at_eof"], "refusal expected before end of stream"
        decoder.receive_eof()
    assert caught.value.reason.value == vector["error"]
    assert len(frames) == vector["frames_before_error"]


@pytest.mark.parametrize("vector", load("fragmentation.json"), ids=lambda v: v["name"])
def test_fragmentation_vector_reassembles_or_is_refused(vector: dict[str, Any]) -> None:
    decoder = FrameDecoder(Side(vector["receiver"]), vector["max_frame_size"])
    decoder.receive_data(bytes.fromhex(vector["hex"]))
    reassemblers: dict[int, Reassembler] = {}
    delivered: list[Frame] = []

    def run() -> None:
        for frame in decoder:
            reassembler = reassemblers.setdefault(
                frame.stream_id, Reassembler(frame.stream_id, vector["max_message_size"])
            )
            message = reassembler.feed(frame)
            if message is not None:
                delivered.append(message)

    if "error" in vector:
        with pytest.raises(ProtocolError) as caught:
            run()
        assert caught.value.reason.value == vector["error"]
        return
    run()
    summary = [
        {
            "stream_id": frame.stream_id,
            "kind": frame.kind.name,
            "flags": [flag.name for flag in (Flags.MORE_FRAMES, Flags.FIN) if frame.flags & flag],
            "payload_len": len(frame.payload),
            "payload_sha256": hashlib.sha256(frame.payload).hexdigest(),
        }
        for frame in delivered
    ]
    assert summary == vector["messages"]


@pytest.mark.parametrize("vector", load("payloads_malformed.json"), ids=lambda v: v["name"])
def test_malformed_payload_vector_is_refused_naming_the_field(vector: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_named_payload(vector["payload"], bytes.fromhex(vector["hex"]))
    assert caught.value.reason.value == vector["error"]
    if vector["field"] is not None:
        assert f".{vector['field']}:" in str(caught.value)
