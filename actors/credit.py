"""Credit arithmetic shared by the machine and its effects: what a chunk costs, the defaults.

The charge is a wire rule (wire.md), so it comes from the codec: a local pair
accounts exactly as a stream over a carrier does.
"""

from __future__ import annotations

from typing import Final

from streamlet.codec.settings import DEFAULT_INITIAL_WINDOW, MIN_CHUNK_CHARGE, chunk_charge

DEFAULT_WINDOW: Final = DEFAULT_INITIAL_WINDOW

__all__ = ["DEFAULT_WINDOW", "MIN_CHUNK_CHARGE", "chunk_charge"]
