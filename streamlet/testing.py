"""Testing helpers: serve a router's handlers in-process, with or without the wire path."""

from __future__ import annotations

from streamlet.runtime.local import open_local

__all__ = ["open_local"]
