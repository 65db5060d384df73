"""specs/wire.md's tables, parsed, against the code's registries, entry by entry."""

from __future__ import annotations

import pathlib

import cbor2
import pytest
from streamlet.codec import (
    CATALOG,
    DEFAULT_INITIAL_WINDOW,
    DEFAULT_MAX_CHUNK_SIZE,
    DEFAULT_MAX_FRAME_SIZE,
    DEFAULT_MAX_STREAMS,
    MAX_MAX_FRAME_SIZE,
    MIN_MAX_FRAME_SIZE,
    PROTOCOL_VERSION,
    ByePayload,
    Encoding,
    ErrorPayload,
    Flags,
    FrameKind,
    HelloPayload,
    Mode,
    OpenPayload,
    Reason,
    Side,
    StatusCode,
)

WIRE = pathlib.Path(__file__).resolve().parents[2] / "specs" / "wire.md"


def table(name: str) -> list[list[str]]:
    """The rows (cells stripped) of the table after `<!-- table: name -->`."""
    lines = WIRE.read_text().splitlines()
    start = lines.index(f"<!-- table: {name} -->") + 3  # marker, header, separator
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def flag_set(text: str) -> Flags:
    flags = Flags.NONE
    for name in text.split(","):
        if name.strip() not in ("", "-"):
            flags |= Flags[name.strip()]
    return flags


def test_catalog_table_matches_the_registry_entry_by_entry() -> None:
    rows = table("catalog")
    assert [row[1] for row in rows] == [kind.name for kind in CATALOG]
    for byte, name, kind_class, sender, flags, stream_id, payload in rows:
        spec = CATALOG[FrameKind[name]]
        assert int(byte, 16) == spec.kind
        assert kind_class == spec.kind_class.value
        assert sender == spec.sender.value
        assert flag_set(flags) == spec.allowed_flags
        assert stream_id == spec.stream_id.value
        expected = spec.payload.value
        if spec.payload_size is not None:
            expected += f" {spec.payload_size}"
        assert payload == expected


def test_kind_bytes_are_unique_and_every_kind_is_catalogued() -> None:
    values = [int(kind) for kind in FrameKind]
    assert len(values) == len(set(values))
    assert set(CATALOG) == set(FrameKind)


def test_flag_bits_are_pinned() -> None:
    assert (Flags.COMPRESSED, Flags.MORE_FRAMES, Flags.FIN) == (0x01, 0x02, 0x04)


def test_flag_matrix_table_matches_the_registry() -> None:
    rows = table("flags")
    assert len(rows) == len(CATALOG)
    for name, compressed, more, fin in rows:
        allowed = CATALOG[FrameKind[name]].allowed_flags
        assert (compressed == "x") == bool(allowed & Flags.COMPRESSED)
        assert (more == "x") == bool(allowed & Flags.MORE_FRAMES)
        assert (fin == "x") == bool(allowed & Flags.FIN)


def test_direction_table_matches_the_registry() -> None:
    rows = table("direction")
    stream_kinds = [kind for kind, spec in CATALOG.items() if spec.stream_id.value == "nonzero"]
    assert [row[0] for row in rows] == [kind.name for kind in stream_kinds]
    for name, opener, acceptor in rows:
        spec = CATALOG[FrameKind[name]]
        for stream_id in (1, 2):  # opened by the connector, by the acceptor
            opener_side = Side.CONNECTOR if stream_id == 1 else Side.ACCEPTOR
            assert spec.sender_may_send(opener_side, stream_id) == (opener == "yes")
            assert spec.sender_may_send(opener_side.peer, stream_id) == (acceptor == "yes")


def test_status_table_lists_every_code_with_its_number() -> None:
    rows = table("status")
    assert [(int(code), name) for code, name in rows] == [(c.value, c.name) for c in StatusCode]


def test_settings_table_defaults_match_the_code() -> None:
    rows = {row[0]: row for row in table("settings")}
    hello = HelloPayload()
    assert set(rows) == {
        "version",
        "max_frame_size",
        "initial_window",
        "max_streams",
        "max_chunk_size",
        "encodings",
    }
    assert int(rows["version"][2]) == hello.version == PROTOCOL_VERSION
    assert int(rows["max_frame_size"][2]) == hello.max_frame_size == DEFAULT_MAX_FRAME_SIZE
    assert rows["max_frame_size"][3] == f"{MIN_MAX_FRAME_SIZE} .. {MAX_MAX_FRAME_SIZE}"
    assert int(rows["initial_window"][2]) == hello.initial_window == DEFAULT_INITIAL_WINDOW
    assert int(rows["max_streams"][2]) == hello.max_streams == DEFAULT_MAX_STREAMS
    assert int(rows["max_chunk_size"][2]) == hello.max_chunk_size == DEFAULT_MAX_CHUNK_SIZE


@pytest.mark.parametrize("row", table("refusals"), ids=lambda row: row[1])
def test_refusal_table_reasons_are_reasons_the_code_raises(row: list[str]) -> None:
    assert Reason(row[1]).value == row[1]


def test_payload_table_lists_exactly_the_fields_each_payload_encodes() -> None:
    rows = table("payloads")
    fields: dict[str, set[str]] = {}
    for payload, field, *_ in rows:
        fields.setdefault(payload, set()).add(field)
    full_open = OpenPayload("m", Mode.BIDI, Encoding.RAW, 1024, 1.0, {"k": "v"})
    full_error = ErrorPayload(StatusCode.INTERNAL, "x", {"n": 1})
    assert set(cbor2.loads(full_open.encode())) == fields["STREAM_OPEN"]
    assert set(cbor2.loads(full_error.encode())) == fields["STREAM_ERROR"]
    assert set(cbor2.loads(ByePayload().encode())) == fields["BYE"]
    assert set(cbor2.loads(HelloPayload().encode())) == {row[0] for row in table("settings")}
