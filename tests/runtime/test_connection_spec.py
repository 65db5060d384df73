"""specs/connection.md's tables pinned against the carrier's code."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import attrs
import pytest
from streamlet.codec import StatusCode
from streamlet.runtime import carrier_errors
from streamlet.runtime.settings import ConnectionSettings

SPEC = Path(__file__).resolve().parents[2] / "specs" / "connection.md"


def _table(heading: str) -> list[list[str]]:
    """The rows of the first table under the section whose heading starts with `heading`."""
    text = SPEC.read_text()
    section = re.split(r"^## ", text, flags=re.M)
    (body,) = [part for part in section if part.startswith(heading)]
    rows = [line for line in body.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


def test_settings_table_lists_every_setting_with_its_default() -> None:
    defaults = ConnectionSettings()
    rows = {name: default for name, default, _meaning in _table("2. Settings")}
    assert set(rows) == {field.name for field in attrs.fields(ConnectionSettings)}
    for name, default in rows.items():
        value = getattr(defaults, name)
        assert default == repr(value), f"{name}: spec says {default}, code has {value!r}"


def test_failure_table_names_real_errors_and_statuses() -> None:
    rows = _table("8. Failures")
    assert len(rows) >= 8
    for _cause, bye, raised in rows:
        error = getattr(carrier_errors, raised)
        assert inspect.isclass(error) and issubclass(error, carrier_errors.CarrierError)
        assert bye == "-" or bye in StatusCode.__members__


def test_every_carrier_error_appears_in_the_failure_table() -> None:
    named = {raised for _cause, _bye, raised in _table("8. Failures")}
    errors = {
        name
        for name, value in vars(carrier_errors).items()
        if inspect.isclass(value)
        and issubclass(value, carrier_errors.CarrierError)
        and value is not carrier_errors.CarrierError
    }
    assert named == errors


@pytest.mark.parametrize("row", _table("5. Per-stream refusals"), ids=lambda row: row[0][:40])
def test_refusal_statuses_are_status_codes(row: list[str]) -> None:
    outcome = row[1]
    assert outcome in StatusCode.__members__ or outcome.startswith("dropped")
