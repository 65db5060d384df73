"""Writes `specs/vectors/*.json` from the codec: `python tests/codec/gen_codec_vectors.py`.

The JSON is committed; `test_codec_vectors.py` checks the codec against it in
both directions, so a change in the codec that changes bytes fails there
until the vectors are regenerated and the change reviewed.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import struct
from typing import Any

import cbor2
from streamlet.codec import (
    HEADER,
    ByePayload,
    CreditPayload,
    Encoding,
    ErrorPayload,
    Flags,
    Frame,
    FrameEncoder,
    FrameKind,
    HelloAckPayload,
    HelloPayload,
    Mode,
    OpenPayload,
    Side,
    StatusCode,
)

OUT = pathlib.Path(__file__).resolve().parents[2] / "specs" / "vectors"
MAX = 16 * 1024  # the smallest legal max frame size keeps fragment vectors short


def flag_names(flags: int) -> list[str]:
    return [flag.name for flag in (Flags.COMPRESSED, Flags.MORE_FRAMES, Flags.FIN) if flags & flag]


def frame_json(frame: Frame, meaning: Any = None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "kind": frame.kind.name,
        "kind_byte": int(frame.kind),
        "flags": flag_names(frame.flags),
        "stream_id": frame.stream_id,
        "payload_hex": bytes(frame.payload).hex(),
    }
    if meaning is not None:
        entry["meaning"] = meaning
    return entry


def frame_summary(frame: Frame) -> dict[str, Any]:
    return {
        "kind": frame.kind.name,
        "flags": flag_names(frame.flags),
        "stream_id": frame.stream_id,
        "payload_len": len(frame.payload),
    }


def message_json(stream_id: int, kind: str, flags: list[str], payload: bytes) -> dict[str, Any]:
    return {
        "stream_id": stream_id,
        "kind": kind,
        "flags": flags,
        "payload_len": len(payload),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
    }


def raw_header(length: int, kind: int, flags: int, reserved: int, stream_id: int) -> bytes:
    return HEADER.pack(length, kind, flags, reserved, stream_id)


def valid_vectors() -> list[dict[str, Any]]:
    vectors = []

    def add(name: str, sender: Side, frame: Frame, meaning: Any) -> None:
        data = FrameEncoder(sender, MAX).encode(frame)
        vectors.append(
            {
                "name": name,
                "receiver": sender.peer.value,
                "max_frame_size": MAX,
                "hex": data.hex(),
                "frames": [frame_json(frame, meaning)],
            }
        )

    hello = HelloPayload()
    add(
        "hello_defaults",
        Side.CONNECTOR,
        Frame(FrameKind.HELLO, Flags.NONE, 0, hello.encode()),
        {"payload": "HELLO", "fields": cbor2.loads(hello.encode())},
    )
    ack = HelloAckPayload(
        max_frame_size=MAX,
        initial_window=65536,
        max_streams=8,
        max_chunk_size=32768,
        encodings=(Encoding.RAW,),
    )
    add(
        "hello_ack_custom",
        Side.ACCEPTOR,
        Frame(FrameKind.HELLO_ACK, Flags.NONE, 0, ack.encode()),
        {"payload": "HELLO_ACK", "fields": cbor2.loads(ack.encode())},
    )
    opening = OpenPayload("echo", Mode.BIDI, Encoding.CBOR, 1048576)
    add(
        "open_minimal",
        Side.CONNECTOR,
        Frame(FrameKind.STREAM_OPEN, Flags.NONE, 1, opening.encode()),
        {"payload": "STREAM_OPEN", "fields": cbor2.loads(opening.encode())},
    )
    full = OpenPayload("ticks", Mode.SERVER_STREAM, Encoding.RAW, 4096, 2.5, {"trace": "abc"})
    add(
        "open_with_deadline_metadata_fin_from_acceptor",
        Side.ACCEPTOR,
        Frame(FrameKind.STREAM_OPEN, Flags.FIN, 2, full.encode()),
        {"payload": "STREAM_OPEN", "fields": cbor2.loads(full.encode())},
    )
    add(
        "chunk_raw",
        Side.CONNECTOR,
        Frame(FrameKind.STREAM_CHUNK, Flags.NONE, 1, b"hello"),
        {"encoding": "raw"},
    )
    value = {"i": 7, "tags": ["a", "b"], "ok": True}
    add(
        "chunk_cbor_fin",
        Side.ACCEPTOR,
        Frame(FrameKind.STREAM_CHUNK, Flags.FIN, 1, cbor2.dumps(value)),
        {"encoding": "cbor", "value": value},
    )
    add(
        "chunk_empty_raw",
        Side.CONNECTOR,
        Frame(FrameKind.STREAM_CHUNK, Flags.NONE, 3, b""),
        {"encoding": "raw"},
    )
    add("end", Side.CONNECTOR, Frame(FrameKind.STREAM_END, Flags.NONE, 1, b""), None)
    add(
        "reply_cbor",
        Side.ACCEPTOR,
        Frame(FrameKind.STREAM_REPLY, Flags.NONE, 1, cbor2.dumps(45)),
        {"encoding": "cbor", "value": 45},
    )
    error = ErrorPayload(StatusCode.INTERNAL, "boom", {"chunks_taken": 3})
    add(
        "error_from_acceptor",
        Side.ACCEPTOR,
        Frame(FrameKind.STREAM_ERROR, Flags.NONE, 1, error.encode()),
        {"payload": "STREAM_ERROR", "fields": cbor2.loads(error.encode())},
    )
    cancel = ErrorPayload(StatusCode.CANCELLED)
    add(
        "error_abort_from_opener",
        Side.CONNECTOR,
        Frame(FrameKind.STREAM_ERROR, Flags.NONE, 1, cancel.encode()),
        {"payload": "STREAM_ERROR", "fields": cbor2.loads(cancel.encode())},
    )
    add(
        "credit",
        Side.CONNECTOR,
        Frame(FrameKind.STREAM_CREDIT, Flags.NONE, 2, CreditPayload(65536).encode()),
        {"payload": "STREAM_CREDIT", "fields": {"increment": 65536}},
    )
    bye = ByePayload(StatusCode.OK, "shutting down", 7)
    add(
        "bye",
        Side.ACCEPTOR,
        Frame(FrameKind.BYE, Flags.NONE, 0, bye.encode()),
        {"payload": "BYE", "fields": cbor2.loads(bye.encode())},
    )
    opaque = bytes(range(1, 9))
    add(
        "ping",
        Side.CONNECTOR,
        Frame(FrameKind.PING, Flags.NONE, 0, opaque),
        {"opaque_hex": opaque.hex()},
    )
    add(
        "pong",
        Side.ACCEPTOR,
        Frame(FrameKind.PONG, Flags.NONE, 0, opaque),
        {"opaque_hex": opaque.hex()},
    )
    add(
        "large_stream_id",
        Side.CONNECTOR,
        Frame(FrameKind.STREAM_END, Flags.NONE, 2**64 - 1, b""),
        None,
    )
    return vectors


def fragment_vectors() -> list[dict[str, Any]]:
    encoder = FrameEncoder(Side.CONNECTOR, MAX)
    server = FrameEncoder(Side.ACCEPTOR, MAX)
    big = bytes(i % 251 for i in range(33000))
    small = b"small"
    frames = encoder.fragment(FrameKind.STREAM_CHUNK, 1, big, fin=True)
    other = Frame(FrameKind.STREAM_CHUNK, Flags.NONE, 3, small)
    credit = Frame(FrameKind.STREAM_CREDIT, Flags.NONE, 1, CreditPayload(100).encode())
    interleaved = [frames[0], other, frames[1], credit, frames[2]]
    reply = server.fragment(FrameKind.STREAM_REPLY, 1, big[:17000])
    vectors = [
        {
            "name": "chunk_in_three_fragments_fin_on_last_interleaved_with_another_stream",
            "receiver": "acceptor",
            "max_frame_size": MAX,
            "max_message_size": 1048576,
            "hex": b"".join(encoder.encode(frame) for frame in interleaved).hex(),
            "frames": [frame_summary(frame) for frame in interleaved],
            "messages": [
                message_json(3, "STREAM_CHUNK", [], small),
                message_json(1, "STREAM_CREDIT", [], bytes(credit.payload)),
                message_json(1, "STREAM_CHUNK", ["FIN"], big),
            ],
        },
        {
            "name": "reply_in_two_fragments",
            "receiver": "connector",
            "max_frame_size": MAX,
            "max_message_size": 1048576,
            "hex": b"".join(server.encode(frame) for frame in reply).hex(),
            "frames": [frame_summary(frame) for frame in reply],
            "messages": [
                message_json(1, "STREAM_REPLY", [], big[:17000]),
            ],
        },
    ]
    bad = [
        (
            "end_in_middle_of_fragmented_chunk",
            [frames[0], Frame(FrameKind.STREAM_END, Flags.NONE, 1)],
            "interleaved_fragment",
            1_048_576,
        ),
        ("message_over_max_message_size", frames[:2], "message_too_large", 20000),
    ]
    for name, sequence, reason, bound in bad:
        vectors.append(
            {
                "name": name,
                "receiver": "acceptor",
                "max_frame_size": MAX,
                "max_message_size": bound,
                "hex": b"".join(encoder.encode(frame) for frame in sequence).hex(),
                "error": reason,
            }
        )
    return vectors


def malformed_vectors() -> list[dict[str, Any]]:
    ping = bytes(8)
    good_end = raw_header(16, 0x03, 0, 0, 1)
    cases: list[tuple[str, str, bytes, str]] = [
        ("length_below_header", "acceptor", raw_header(15, 0x03, 0, 0, 1), "length_below_header"),
        ("length_zero", "acceptor", raw_header(0, 0x17, 0, 0, 0), "length_below_header"),
        (
            "length_4gib_refused_after_header",
            "acceptor",
            raw_header(2**32 - 1, 0x02, 0, 0, 1),
            "length_over_max",
        ),
        ("length_one_over_max", "acceptor", raw_header(MAX + 1, 0x02, 0, 0, 1), "length_over_max"),
        ("unknown_kind_0x07", "acceptor", raw_header(16, 0x07, 0, 0, 1), "unknown_kind"),
        ("unknown_kind_0x00", "acceptor", raw_header(16, 0x00, 0, 0, 0), "unknown_kind"),
        ("reserved_nonzero", "acceptor", raw_header(16, 0x03, 0, 1, 1), "reserved_nonzero"),
        ("unknown_flag_bit", "acceptor", raw_header(16, 0x03, 0x08, 0, 1), "unknown_flags"),
        (
            "compressed_flag",
            "acceptor",
            raw_header(21, 0x02, 0x01, 0, 1) + b"abcde",
            "compressed_unsupported",
        ),
        ("fin_on_end", "acceptor", raw_header(16, 0x03, 0x04, 0, 1), "flags_not_allowed"),
        (
            "more_frames_on_open",
            "acceptor",
            raw_header(17, 0x01, 0x02, 0, 1) + b"\xa0",
            "flags_not_allowed",
        ),
        (
            "fin_on_reply",
            "connector",
            raw_header(17, 0x04, 0x04, 0, 1) + b"\x01",
            "flags_not_allowed",
        ),
        (
            "more_frames_on_ping",
            "acceptor",
            raw_header(24, 0x17, 0x02, 0, 0) + ping,
            "flags_not_allowed",
        ),
        (
            "more_frames_with_fin",
            "acceptor",
            raw_header(17, 0x02, 0x06, 0, 1) + b"x",
            "more_frames_with_fin",
        ),
        (
            "ping_on_a_stream",
            "acceptor",
            raw_header(24, 0x17, 0, 0, 1) + ping,
            "stream_id_must_be_zero",
        ),
        (
            "hello_on_a_stream",
            "acceptor",
            raw_header(17, 0x10, 0, 0, 1) + b"\xa0",
            "stream_id_must_be_zero",
        ),
        (
            "chunk_on_stream_zero",
            "acceptor",
            raw_header(17, 0x02, 0, 0, 0) + b"x",
            "stream_id_must_be_nonzero",
        ),
        (
            "open_with_receivers_parity",
            "acceptor",
            raw_header(17, 0x01, 0, 0, 2) + b"\xa0",
            "wrong_sender",
        ),
        (
            "reply_from_the_opener",
            "acceptor",
            raw_header(17, 0x04, 0, 0, 1) + b"\x01",
            "wrong_sender",
        ),
        (
            "hello_from_the_acceptor",
            "connector",
            raw_header(17, 0x10, 0, 0, 0) + b"\xa0",
            "wrong_sender",
        ),
        (
            "hello_ack_from_the_connector",
            "acceptor",
            raw_header(17, 0x11, 0, 0, 0) + b"\xa0",
            "wrong_sender",
        ),
        ("end_with_payload", "acceptor", raw_header(17, 0x03, 0, 0, 1) + b"x", "payload_size"),
        (
            "ping_of_seven_bytes",
            "acceptor",
            raw_header(23, 0x17, 0, 0, 0) + ping[:7],
            "payload_size",
        ),
        (
            "credit_of_eight_bytes",
            "acceptor",
            raw_header(24, 0x06, 0, 0, 1) + bytes(8),
            "payload_size",
        ),
        ("open_with_empty_payload", "acceptor", raw_header(16, 0x01, 0, 0, 1), "payload_size"),
        ("empty_fragment", "acceptor", raw_header(16, 0x02, 0x02, 0, 1), "empty_fragment"),
        ("truncated_header_at_eof", "acceptor", good_end[:10], "truncated"),
        ("truncated_body_at_eof", "acceptor", raw_header(20, 0x02, 0, 0, 1) + b"ab", "truncated"),
        (
            "valid_frame_then_unknown_kind",
            "acceptor",
            good_end + raw_header(16, 0x7F, 0, 0, 1),
            "unknown_kind",
        ),
    ]
    return [
        {
            "name": name,
            "receiver": receiver,
            "max_frame_size": MAX,
            "hex": data.hex(),
            "error": reason,
            "frames_before_error": 1 if name.startswith("valid_frame_then") else 0,
            "at_eof": reason == "truncated",
        }
        for name, receiver, data, reason in cases
    ]


def payload_vectors() -> list[dict[str, Any]]:
    def m(fields: dict[str, Any]) -> bytes:
        return cbor2.dumps(fields)

    open_ok = {"method": "echo", "mode": "bidi", "encoding": "cbor", "initial_window": 1024}
    hello_ok = cbor2.loads(HelloPayload().encode())
    cases: list[tuple[str, str, bytes, str, str | None]] = [
        (
            "open_missing_method",
            "STREAM_OPEN",
            m({k: v for k, v in open_ok.items() if k != "method"}),
            "bad_field",
            "method",
        ),
        (
            "open_mode_unknown",
            "STREAM_OPEN",
            m({**open_ok, "mode": "sideways"}),
            "bad_field",
            "mode",
        ),
        (
            "open_window_zero",
            "STREAM_OPEN",
            m({**open_ok, "initial_window": 0}),
            "bad_field",
            "initial_window",
        ),
        (
            "open_window_below_one_chunk_charge",
            "STREAM_OPEN",
            m({**open_ok, "initial_window": 15}),
            "bad_field",
            "initial_window",
        ),
        (
            "open_window_is_bool",
            "STREAM_OPEN",
            m({**open_ok, "initial_window": True}),
            "bad_field",
            "initial_window",
        ),
        (
            "open_deadline_negative",
            "STREAM_OPEN",
            m({**open_ok, "deadline": -1.0}),
            "bad_field",
            "deadline",
        ),
        (
            "open_deadline_nan",
            "STREAM_OPEN",
            m({**open_ok, "deadline": float("nan")}),
            "bad_field",
            "deadline",
        ),
        (
            "open_metadata_not_text",
            "STREAM_OPEN",
            m({**open_ok, "metadata": {"a": 1}}),
            "bad_field",
            "metadata",
        ),
        (
            "open_metadata_too_large",
            "STREAM_OPEN",
            m({**open_ok, "metadata": {"k": "v" * 8192}}),
            "bad_field",
            "metadata",
        ),
        ("open_not_a_map", "STREAM_OPEN", m([1, 2]), "bad_field", None),  # type: ignore[arg-type]
        ("open_trailing_bytes", "STREAM_OPEN", m(open_ok) + b"\x00", "malformed_cbor", None),
        (
            "open_duplicate_key",
            "STREAM_OPEN",
            b"\xa2\x66method\x61a\x66method\x61b",
            "malformed_cbor",
            None,
        ),
        ("open_indefinite_map", "STREAM_OPEN", b"\xbf\x66method\x61a\xff", "malformed_cbor", None),
        ("open_integer_key", "STREAM_OPEN", b"\xa1\x01\x01", "malformed_cbor", None),
        (
            "open_tagged_value",
            "STREAM_OPEN",
            m({**open_ok, "method": cbor2.CBORTag(35, "a+")}),
            "cbor_tag_refused",
            None,
        ),
        ("open_truncated", "STREAM_OPEN", m(open_ok)[:-3], "malformed_cbor", None),
        (
            "open_too_deep",
            "STREAM_OPEN",
            b"\xa1\x61x" + b"\x81" * 40 + b"\x00",
            "malformed_cbor",
            None,
        ),
        ("error_code_is_text", "STREAM_ERROR", m({"code": "INTERNAL"}), "bad_field", "code"),
        ("error_missing_code", "STREAM_ERROR", m({"message": "x"}), "bad_field", "code"),
        (
            "error_details_not_map",
            "STREAM_ERROR",
            m({"code": 13, "details": [1]}),
            "bad_field",
            "details",
        ),
        (
            "hello_frame_size_below_16k",
            "HELLO",
            m({**hello_ok, "max_frame_size": 1024}),
            "bad_field",
            "max_frame_size",
        ),
        (
            "hello_frame_size_above_16m",
            "HELLO",
            m({**hello_ok, "max_frame_size": 2**24 + 1}),
            "bad_field",
            "max_frame_size",
        ),
        (
            "hello_chunk_above_window",
            "HELLO",
            m({**hello_ok, "max_chunk_size": 2**21}),
            "bad_field",
            "max_chunk_size",
        ),
        (
            "hello_missing_encodings",
            "HELLO",
            m({k: v for k, v in hello_ok.items() if k != "encodings"}),
            "bad_field",
            "encodings",
        ),
        ("bye_missing_last_stream_id", "BYE", m({"code": 0}), "bad_field", "last_stream_id"),
        ("credit_zero", "STREAM_CREDIT", struct.pack("<I", 0), "bad_field", "increment"),
        ("credit_above_2_31", "STREAM_CREDIT", struct.pack("<I", 2**31), "bad_field", "increment"),
        (
            "chunk_decimal_tag_huge_exponent",
            "cbor chunk",
            b"\xc4\x82\x1b\x7f\xff\xff\xff\xff\xff\xff\xff\x01",
            "cbor_tag_refused",
            None,
        ),
        (
            "chunk_regex_tag",
            "cbor chunk",
            cbor2.dumps(cbor2.CBORTag(35, "(a+)+$")),
            "cbor_tag_refused",
            None,
        ),
        (
            "chunk_set_tag",
            "cbor chunk",
            cbor2.dumps(cbor2.CBORTag(258, [1, 2])),
            "cbor_tag_refused",
            None,
        ),
        (
            "chunk_shared_reference",
            "cbor chunk",
            b"\xd8\x1c\x81\xd8\x1d\x00",
            "cbor_tag_refused",
            None,
        ),
        (
            "chunk_unknown_tag",
            "cbor chunk",
            cbor2.dumps(cbor2.CBORTag(9999, 1)),
            "cbor_tag_refused",
            None,
        ),
        (
            "chunk_huge_declared_bytes",
            "cbor chunk",
            b"\x5b\xff\xff\xff\xff\xff\xff\xff\xff",
            "malformed_cbor",
            None,
        ),
        (
            "chunk_huge_declared_array",
            "cbor chunk",
            b"\x9b\x00\x00\x00\xff\xff\xff\xff\xff",
            "malformed_cbor",
            None,
        ),
        ("chunk_empty", "cbor chunk", b"", "malformed_cbor", None),
        ("chunk_trailing_bytes", "cbor chunk", b"\x01\x02", "malformed_cbor", None),
        ("chunk_lone_break", "cbor chunk", b"\xff", "malformed_cbor", None),
        ("chunk_invalid_utf8", "cbor chunk", b"\x61\xff", "malformed_cbor", None),
    ]
    return [
        {"name": name, "payload": payload, "hex": data.hex(), "error": reason, "field": field}
        for name, payload, data, reason, field in cases
    ]


def write(name: str, description: str, vectors: list[dict[str, Any]]) -> None:
    document = {"description": description, "vectors": vectors}
    (OUT / name).write_text(json.dumps(document, indent=1) + "\n")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    write(
        "frames_valid.json",
        "Legal frames: `hex` decodes, at `receiver` with `max_frame_size`, to `frames`, and "
        "`frames` encode to `hex`. `meaning` is the decoded payload.",
        valid_vectors(),
    )
    write(
        "frames_malformed.json",
        "Byte streams a receiver refuses with a connection error; `error` is the reason keyword "
        "of specs/wire.md section 9, raised after `frames_before_error` frames (at end of "
        "stream when `at_eof`).",
        malformed_vectors(),
    )
    write(
        "fragmentation.json",
        "Fragmented messages: frames as received, `messages` as delivered after reassembly "
        "(with `max_message_size`), or the `error` keyword.",
        fragment_vectors(),
    )
    write(
        "payloads_malformed.json",
        "Payloads a receiver refuses: `payload` names the payload kind ('cbor chunk' is a chunk "
        "of a cbor stream), `error` the reason keyword, `field` the field named.",
        payload_vectors(),
    )


if __name__ == "__main__":
    main()
