"""Testing helpers: serve a router's handlers in-process, with or without the wire path.

`open_local` pairs the client stream with the handler directly (no carrier, no
socket); `open_memory_connection` runs the whole wire path (codec, carrier,
credit frames) over an in-memory byte stream.
"""

from __future__ import annotations

from streamlet.runtime.endpoints import open_memory_connection
from streamlet.runtime.local import open_local

__all__ = ["open_local", "open_memory_connection"]
