"""Keepalive: PING the peer every interval and give up on it when a PONG is late.

A peer that stops answering (a dead host, a stuck process, a cable pulled
without a FIN) would otherwise hang every stream on the connection forever;
with this, the connection fails with `PeerUnresponsiveError` and its streams
end with UNAVAILABLE.
"""

from __future__ import annotations

from collections.abc import Callable

import trio
from streamlet.codec import Flags, Frame, FrameKind

from .carrier_errors import CarrierError, PeerUnresponsiveError
from .outbound import Outbound

Terminate = Callable[[CarrierError, str], None]


class Keepalive:
    """One connection's PING / PONG state: the outstanding PING and the event its PONG sets."""

    def __init__(self, outbound: Outbound) -> None:
        self._outbound = outbound
        self._sent = 0
        self._waiting: bytes | None = None
        self._answered = trio.Event()

    def pong(self, payload: bytes | bytearray | memoryview) -> None:
        """The peer answered a PING; a PONG for no outstanding PING is ignored."""
        if self._waiting is not None and bytes(payload) == self._waiting:
            self._waiting = None
            self._answered.set()

    async def run(self, interval: float, patience: float, terminate: Terminate) -> None:
        """PING every `interval` seconds; call `terminate` if a PONG takes over `patience`."""
        while True:
            await trio.sleep(interval)
            self._sent += 1
            opaque = self._sent.to_bytes(8, "little")
            self._waiting = opaque
            self._answered = trio.Event()
            self._outbound.queue_control(Frame(FrameKind.PING, Flags.NONE, 0, opaque))
            with trio.move_on_after(patience):
                await self._answered.wait()
                continue
            failure = PeerUnresponsiveError(f"the peer did not answer PING within {patience:g} s")
            terminate(failure, failure.message)
            return
