"""The per-stream state machine, the actor task that applies it, and local pairing."""

from __future__ import annotations

from .actor import Stream, StreamInfo
from .errors import ChunkTooLargeError, StreamStateError
from .lifecycle import open_owner_nursery, open_pair, open_stream, pair
from .link import PeerLink
from .machine import DEFAULT_WINDOW, MIN_CHUNK_CHARGE, chunk_charge
from .table import RecvState, ReplyState, Role, SendState, StreamState

__all__ = [
    "DEFAULT_WINDOW",
    "MIN_CHUNK_CHARGE",
    "ChunkTooLargeError",
    "PeerLink",
    "RecvState",
    "ReplyState",
    "Role",
    "SendState",
    "Stream",
    "StreamInfo",
    "StreamState",
    "StreamStateError",
    "chunk_charge",
    "open_owner_nursery",
    "open_pair",
    "open_stream",
    "pair",
]
