"""The actor layer's own errors: a call made in the wrong state, and a chunk too large to send.

A stream that *failed* is not one of these: its calls raise the stored
`streamlet.codec.status.StreamError`, an outcome rather than a misuse.
"""

from __future__ import annotations


class StreamStateError(RuntimeError):
    """An owner call that is illegal for the stream's mode, role or state.

    The stream is left exactly as it was. The message names the call, the
    stream id and the state, e.g. ``send on stream 3 (client bidi) in state
    half_closed_local (send ended, recv open): the send side is closed``.
    """


class ChunkTooLargeError(ValueError):
    """A chunk or reply larger than the peer's max chunk size; raised at once, nothing is sent."""
