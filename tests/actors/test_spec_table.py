"""specs/stream.md and actors/table.py hold the same tables: checked entry by entry, both ways."""

from __future__ import annotations

from pathlib import Path

from streamlet.actors.table import (
    CALL_RULES,
    TRANSITIONS,
    Effect,
    Event,
    RecvState,
    Role,
    SendState,
    Transition,
)
from streamlet.codec.modes import Mode

SPEC = Path(__file__).resolve().parents[2] / "specs" / "stream.md"


def _tables() -> list[list[list[str]]]:
    """Every markdown table in the spec, as rows of cells (header and rule lines dropped)."""
    tables: list[list[list[str]]] = []
    current: list[list[str]] | None = None
    for line in SPEC.read_text().splitlines():
        if line.startswith("|"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if current is None:
                current = [cells]
                tables.append(current)
            elif not set("".join(cells)) <= set("-:"):
                current.append(cells)
        else:
            current = None
    return tables


def _table_with_header(header: list[str]) -> list[list[str]]:
    matches = [table[1:] for table in _tables() if table[0] == header]
    assert len(matches) == 1, f"expected one table headed {header}"
    return matches[0]


def _spec_transitions() -> dict[tuple[SendState, RecvState, Event], Transition]:
    rows = _table_with_header(["send", "recv", "event", "send'", "recv'", "effects"])
    spec: dict[tuple[SendState, RecvState, Event], Transition] = {}
    for send, recv, event, send_next, recv_next, effects in rows:
        key = (SendState(send), RecvState(recv), Event(event))
        assert key not in spec, f"duplicate spec row {key}"
        names = [] if effects == "—" else [name.strip() for name in effects.split(",")]
        spec[key] = Transition(
            SendState(send_next), RecvState(recv_next), tuple(Effect(name) for name in names)
        )
    return spec


def test_every_spec_transition_is_in_the_code_table() -> None:
    spec = _spec_transitions()
    for key, row in spec.items():
        assert TRANSITIONS.get(key) == row, f"spec row {key} -> {row}"


def test_every_code_transition_is_in_the_spec_table() -> None:
    spec = _spec_transitions()
    for key, row in TRANSITIONS.items():
        assert spec.get(key) == row, f"code row {key} -> {row}"


def _spec_call_rules() -> dict[tuple[Mode, Role], frozenset[Event]]:
    header = ["mode", "role", *[e.value for e in _CALLS]]
    rules: dict[tuple[Mode, Role], frozenset[Event]] = {}
    for mode, role, *cells in _table_with_header(header):
        assert set(cells) <= {"yes", "no"}
        rules[(Mode(mode), Role(role))] = frozenset(
            call for call, cell in zip(_CALLS, cells, strict=True) if cell == "yes"
        )
    return rules


_CALLS = [
    Event.SEND,
    Event.RECV,
    Event.CLOSE_SEND,
    Event.CLOSE,
    Event.ABORT,
    Event.REPLY,
    Event.REPLY_ERROR,
    Event.AWAIT_REPLY,
]


def test_spec_mode_role_rules_match_the_code_both_ways() -> None:
    spec = _spec_call_rules()
    assert set(spec) == set(CALL_RULES)
    for key, allowed in CALL_RULES.items():
        assert spec[key] == allowed, f"mode/role rule {key}"


def test_every_effect_in_the_code_is_explained_in_the_spec() -> None:
    explained = {row[0] for row in _table_with_header(["effect", "what it does"])}
    assert explained == {effect.value for effect in Effect}
