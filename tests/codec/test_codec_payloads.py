"""Payload schemas: round trips, validation naming the field, and the CBOR guards."""

from __future__ import annotations

import math
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamlet.codec import (
    MAX_METADATA_BYTES,
    MIN_WINDOW,
    ByePayload,
    CreditPayload,
    Encoding,
    ErrorPayload,
    HelloAckPayload,
    HelloPayload,
    Mode,
    OpenPayload,
    ProtocolError,
    Reason,
    StatusCode,
    StreamError,
    check_version,
    decode_cbor,
    ping_payload,
)

EXAMPLES = settings(max_examples=200, deadline=None)
OPEN = {"method": "echo", "mode": "bidi", "encoding": "cbor", "initial_window": 1024}


def refused(decode: Any, data: bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        decode(data)
    return caught.value


@EXAMPLES
@given(
    st.text(min_size=1, max_size=50),
    st.sampled_from(list(Mode)),
    st.sampled_from(list(Encoding)),
    st.integers(MIN_WINDOW, 2**31 - 1),
    st.none() | st.floats(min_value=1e-6, max_value=1e6),
    st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=5),
)
def test_open_payload_round_trips(
    method: str,
    mode: Mode,
    encoding: Encoding,
    window: int,
    deadline: float | None,
    metadata: dict[str, str],
) -> None:
    payload = OpenPayload(method, mode, encoding, window, deadline, metadata)
    assert OpenPayload.decode(payload.encode()) == payload


def test_open_payload_ignores_unknown_fields_and_null_optionals() -> None:
    data = cbor2.dumps({**OPEN, "future": [1, 2], "deadline": None, "metadata": None})
    assert OpenPayload.decode(data) == OpenPayload("echo", Mode.BIDI, Encoding.CBOR, 1024)


def test_open_deadline_accepts_an_integer_number_of_seconds() -> None:
    assert OpenPayload.decode(cbor2.dumps({**OPEN, "deadline": 5})).deadline == 5.0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("method", ""),
        ("method", 7),
        ("method", "m" * 1025),
        ("mode", "sideways"),
        ("encoding", "json"),
        ("initial_window", 0),
        ("initial_window", 15),  # below one chunk's minimum charge: could never carry a chunk
        ("initial_window", 2**31),
        ("initial_window", 1.5),
        ("initial_window", False),
        ("deadline", 0),
        ("deadline", -1),
        ("deadline", math.inf),
        ("deadline", 10**12),
        ("deadline", "soon"),
        ("metadata", ["a"]),
        ("metadata", {"k": 1}),
        ("metadata", {"k": "v" * MAX_METADATA_BYTES}),
    ],
)
def test_open_field_out_of_its_rule_is_refused_naming_the_field(field: str, value: Any) -> None:
    error = refused(OpenPayload.decode, cbor2.dumps({**OPEN, field: value}))
    assert error.reason is Reason.BAD_FIELD
    assert f"STREAM_OPEN.{field}:" in str(error)


@pytest.mark.parametrize("field", ["method", "mode", "encoding", "initial_window"])
def test_open_missing_required_field_is_refused_naming_it(field: str) -> None:
    data = cbor2.dumps({key: value for key, value in OPEN.items() if key != field})
    error = refused(OpenPayload.decode, data)
    assert f"STREAM_OPEN.{field}: required field is missing" in str(error)


def test_open_encode_refuses_what_the_peer_would_refuse() -> None:
    with pytest.raises(ProtocolError, match="initial_window"):
        OpenPayload("m", Mode.UNARY, Encoding.RAW, 0).encode()


def test_error_payload_round_trips_with_details() -> None:
    payload = ErrorPayload(StatusCode.RESOURCE_EXHAUSTED, "credit overrun", {"chunks": 3})
    assert ErrorPayload.decode(payload.encode()) == payload


def test_error_with_unknown_code_maps_to_unknown() -> None:
    decoded = ErrorPayload.decode(cbor2.dumps({"code": 99, "message": "new"}))
    assert decoded.code is StatusCode.UNKNOWN
    assert decoded.message == "new"


def test_error_payload_from_stream_error_truncates_long_messages() -> None:
    payload = ErrorPayload.from_stream_error(StreamError(StatusCode.INTERNAL, "é" * 5000))
    assert len(payload.message.encode()) <= 4096
    assert ErrorPayload.decode(payload.encode()).to_stream_error() == StreamError(
        StatusCode.INTERNAL, payload.message
    )


def test_error_payload_from_stream_error_drops_details_the_peer_would_refuse() -> None:
    for details in ({"when": object()}, {"big": "x" * 10_000}, {"set": {1, 2}}):
        payload = ErrorPayload.from_stream_error(StreamError(StatusCode.ABORTED, "m", details))
        assert ErrorPayload.decode(payload.encode()) == ErrorPayload(StatusCode.ABORTED, "m")


@EXAMPLES
@given(st.integers(1, 2**31 - 1))
def test_credit_payload_round_trips(increment: int) -> None:
    data = CreditPayload(increment).encode()
    assert len(data) == 4
    assert CreditPayload.decode(data).increment == increment


@pytest.mark.parametrize("increment", [0, 2**31])
def test_credit_increment_outside_1_to_2_31_is_refused(increment: int) -> None:
    with pytest.raises(ValueError, match="credit increment"):
        CreditPayload(increment).encode()
    error = refused(CreditPayload.decode, increment.to_bytes(4, "little"))
    assert "STREAM_CREDIT.increment" in str(error)


@EXAMPLES
@given(st.sampled_from(list(StatusCode)), st.text(max_size=100), st.integers(0, 2**64 - 1))
def test_bye_payload_round_trips(code: StatusCode, reason: str, last: int) -> None:
    payload = ByePayload(code, reason, last)
    assert ByePayload.decode(payload.encode()) == payload


@EXAMPLES
@given(
    st.integers(16 * 1024, 16 * 1024 * 1024),
    st.integers(MIN_WINDOW, 2**31 - 1),
    st.integers(0, 2**31 - 1),
    st.data(),
)
def test_hello_payloads_round_trip(
    frame_size: int, window: int, streams: int, data: st.DataObject
) -> None:
    chunk = data.draw(st.integers(1, window))
    encodings = tuple(data.draw(st.lists(st.sampled_from(list(Encoding)), unique=True)))
    for cls in (HelloPayload, HelloAckPayload):
        payload = cls(1, frame_size, window, streams, chunk, encodings)
        assert cls.decode(payload.encode()) == payload


def test_hello_drops_unknown_encodings() -> None:
    fields = cbor2.loads(HelloPayload().encode())
    fields["encodings"] = ["zstd-cbor", "raw"]
    assert HelloPayload.decode(cbor2.dumps(fields)).encodings == (Encoding.RAW,)


def test_hello_chunk_size_above_window_is_refused() -> None:
    fields = {**cbor2.loads(HelloPayload().encode()), "max_chunk_size": 2**21}
    error = refused(HelloAckPayload.decode, cbor2.dumps(fields))
    assert "HELLO_ACK.max_chunk_size" in str(error)


def test_other_protocol_version_is_refused_by_check_version() -> None:
    check_version(HelloPayload())
    with pytest.raises(ProtocolError, match="version"):
        check_version(HelloPayload(version=2))


def test_ping_payload_is_exactly_8_bytes() -> None:
    assert ping_payload(bytearray(8)) == bytes(8)
    with pytest.raises(ValueError, match="8"):
        ping_payload(b"1234567")


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("trailing bytes", b"\x01\x02"),
        ("duplicate keys", b"\xa2\x61a\x01\x61a\x02"),
        ("indefinite array", b"\x9f\x01\xff"),
        ("integer map key", b"\xa1\x01\x01"),
        ("huge declared byte string", b"\x5b\xff\xff\xff\xff\xff\xff\xff\xff"),
        ("nesting deeper than 64", b"\x81" * 65 + b"\x00"),
    ],
)
def test_cbor_chunk_structure_rule_is_enforced(name: str, data: bytes) -> None:
    assert refused(decode_cbor, data).reason is Reason.MALFORMED_CBOR


@pytest.mark.parametrize("tag", [4, 5, 25, 28, 29, 30, 35, 36, 37, 52, 54, 256, 258, 260, 261,
                                 1004, 55799, 12345])  # fmt: skip
def test_cbor_chunk_tags_outside_the_allow_list_are_refused(tag: int) -> None:
    error = refused(decode_cbor, cbor2.dumps(cbor2.CBORTag(tag, 0)))
    assert error.reason is Reason.CBOR_TAG_REFUSED
    assert f"tag {tag}" in str(error)


def test_every_tag_but_0_to_3_is_refused_in_chunks() -> None:
    allowed = set()
    for tag in range(0, 300):
        try:
            decode_cbor(cbor2.dumps(cbor2.CBORTag(tag, 0)))
            allowed.add(tag)
        except ProtocolError as error:
            if error.reason is not Reason.CBOR_TAG_REFUSED:
                allowed.add(tag)  # refused for its content, so the tag itself got through
    assert allowed <= {0, 1, 2, 3}


def test_cbor_chunk_allows_datetimes_and_bignums() -> None:
    assert decode_cbor(cbor2.dumps(2**100)) == 2**100
    assert decode_cbor(cbor2.dumps(cbor2.CBORTag(1, 0))).year == 1970


def test_control_payloads_refuse_every_tag() -> None:
    error = refused(OpenPayload.decode, cbor2.dumps({**OPEN, "method": cbor2.CBORTag(2, b"\x01")}))
    assert error.reason is Reason.CBOR_TAG_REFUSED


def test_control_payload_that_is_not_a_map_is_refused() -> None:
    assert "must be a CBOR map" in str(refused(ByePayload.decode, cbor2.dumps([0, "", 0])))
