"""Status codes (gRPC's canonical set, with gRPC's numbers) and the error that carries one.

Users already know these codes; an ERROR frame, a handler failure and a lost
connection all end a stream with one of them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any


class StatusCode(enum.IntEnum):
    """gRPC's canonical status codes; the numbers are the wire values."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class StreamError(Exception):
    """A stream ended in error: the terminal outcome a `recv()` or `await_reply()` raises.

    Handlers raise it to choose their status; the runtime raises it when the
    peer sent ERROR, the connection was lost, or a deadline passed.
    """

    def __init__(
        self,
        code: StatusCode,
        message: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> None:
        self.code = StatusCode(code)
        self.message = message
        self.details: Mapping[str, Any] = dict(details) if details else {}
        super().__init__(code, message, self.details)

    def __str__(self) -> str:
        text = f"{self.code.name}: {self.message}" if self.message else self.code.name
        return f"{text} {dict(self.details)!r}" if self.details else text

    def __repr__(self) -> str:
        return f"StreamError({self.code.name}, {self.message!r}, {dict(self.details)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StreamError):
            return NotImplemented
        return (self.code, self.message, dict(self.details)) == (
            other.code,
            other.message,
            dict(other.details),
        )

    def __hash__(self) -> int:
        return hash((self.code, self.message))
