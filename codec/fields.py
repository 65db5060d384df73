"""Reading control-payload maps: typed field access whose errors name the field.

Control payloads are CBOR maps with text keys. Unknown fields are ignored (so a
later version may add some), a missing or mistyped required field is a
`ProtocolError` naming the payload and the field. Booleans are never accepted
where an integer is expected, although Python makes `bool` an `int`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .errors import ProtocolError, Reason
from .safecbor import CONTROL_PROFILE, Buffer, decode_cbor_bounded

_MISSING: Any = object()


def bad_field(payload: str, field: str, problem: str) -> ProtocolError:
    """The error for one bad field of one payload."""
    return ProtocolError(f"{payload}.{field}: {problem}", reason=Reason.BAD_FIELD)


def read_map(data: Buffer, payload: str) -> Mapping[Any, Any]:
    """Decode a control payload; it must be one CBOR map."""
    value = decode_cbor_bounded(data, CONTROL_PROFILE)
    if not isinstance(value, Mapping):
        raise ProtocolError(
            f"{payload}: payload must be a CBOR map, got {type(value).__name__}",
            reason=Reason.BAD_FIELD,
        )
    return value


def _get(fields: Mapping[Any, Any], payload: str, field: str, required: bool) -> Any:
    value = fields.get(field, _MISSING)
    if value is None:  # null is the same as absent
        value = _MISSING
    if value is _MISSING and required:
        raise bad_field(payload, field, "required field is missing")
    return value


def get_int(
    fields: Mapping[Any, Any],
    payload: str,
    field: str,
    *,
    low: int,
    high: int,
    default: int | None = None,
) -> int:
    """An integer field in [low, high]; required unless a default is given."""
    value = _get(fields, payload, field, default is None)
    if value is _MISSING:
        assert default is not None
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_field(payload, field, f"expected an integer, got {type(value).__name__}")
    if not low <= value <= high:
        raise bad_field(payload, field, f"{value} is outside [{low}, {high}]")
    return value


def get_str(
    fields: Mapping[Any, Any],
    payload: str,
    field: str,
    *,
    max_bytes: int,
    default: str | None = None,
    nonempty: bool = False,
) -> str:
    """A text field of at most `max_bytes` UTF-8 bytes; required unless a default is given."""
    value = _get(fields, payload, field, default is None)
    if value is _MISSING:
        assert default is not None
        return default
    if not isinstance(value, str):
        raise bad_field(payload, field, f"expected a text string, got {type(value).__name__}")
    if nonempty and not value:
        raise bad_field(payload, field, "must not be empty")
    if len(value.encode()) > max_bytes:
        raise bad_field(payload, field, f"longer than {max_bytes} bytes")
    return value


def get_float(
    fields: Mapping[Any, Any], payload: str, field: str, *, low: float, high: float
) -> float | None:
    """An optional finite number in (low, high]; integers are accepted as numbers."""
    value = _get(fields, payload, field, False)
    if value is _MISSING:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad_field(payload, field, f"expected a number, got {type(value).__name__}")
    number = float(value) if isinstance(value, float) or abs(value) < 2**53 else math.inf
    if not (math.isfinite(number) and low < number <= high):
        raise bad_field(payload, field, f"{value!r} is outside ({low}, {high}]")
    return number


def get_optional_map(fields: Mapping[Any, Any], payload: str, field: str) -> Mapping[Any, Any]:
    """An optional map field (absent: empty)."""
    value = _get(fields, payload, field, False)
    if value is _MISSING:
        return {}
    if not isinstance(value, Mapping):
        raise bad_field(payload, field, f"expected a map, got {type(value).__name__}")
    return value


def get_list(fields: Mapping[Any, Any], payload: str, field: str) -> list[Any]:
    """A required array field."""
    value = _get(fields, payload, field, True)
    if not isinstance(value, list | tuple):
        raise bad_field(payload, field, f"expected an array, got {type(value).__name__}")
    return list(value)
