"""Credit arithmetic shared by the machine and its effects: what a chunk costs, the defaults."""

from __future__ import annotations

from typing import Final

# The least credit a chunk costs: one frame header's worth. Without a floor a
# flood of empty chunks would cost nothing; with it a window of W bytes holds
# at most W // 16 chunks.
MIN_CHUNK_CHARGE: Final = 16
DEFAULT_WINDOW: Final = 1 << 20


def chunk_charge(size: int) -> int:
    """The credit a chunk of `size` encoded bytes consumes."""
    return size if size > MIN_CHUNK_CHARGE else MIN_CHUNK_CHARGE
