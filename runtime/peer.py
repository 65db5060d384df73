"""The peer: what a connected caller holds, streams to open and the unary conveniences.

A `Peer` wraps one running `Carrier`. `open_stream` is the general call (an
async context manager yielding the `Stream`); `call_unary`,
`call_client_stream` and `call_server_stream` are one-liners over it. Unary
calls get the settings' default deadline (30 s) unless the caller sets one.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import trio
from streamlet.actors import Stream
from streamlet.codec import Encoding, HelloPayload, Mode

from .carrier import Carrier, CarrierInfo
from .carrier_errors import CarrierError
from .dispatch import DEFAULT_DEADLINE, Deadline, resolve_deadline


class Peer:
    """The other end of a connection, as the side that holds it sees it."""

    def __init__(self, carrier: Carrier) -> None:
        self.carrier = carrier

    def __repr__(self) -> str:
        return f"<Peer over {self.carrier!r}>"

    @property
    def settings(self) -> HelloPayload | None:
        """The settings the peer announced in its HELLO / HELLO_ACK."""
        return self.carrier.peer_settings

    @property
    def failure(self) -> CarrierError | None:
        """Why the connection failed, if it did (its streams ended with UNAVAILABLE)."""
        return self.carrier.failure

    @property
    def is_open(self) -> bool:
        """Whether new streams may be opened."""
        return self.carrier.is_open

    def info(self) -> CarrierInfo:
        """A snapshot of the connection."""
        return self.carrier.info()

    def open_stream(
        self,
        method: str,
        *,
        mode: Mode | str,
        encoding: Encoding | str = Encoding.CBOR,
        metadata: Mapping[str, str] | None = None,
        deadline: Deadline = DEFAULT_DEADLINE,
    ) -> AbstractAsyncContextManager[Stream]:
        """Open a stream to `method` for the body of an `async with` (see `Carrier.open_stream`).

        A unary call gets the settings' `unary_deadline` unless `deadline` is
        given (None: no deadline); other modes have none unless one is set.
        """
        mode = Mode(mode)
        return self.carrier.open_stream(
            method,
            mode=mode,
            encoding=encoding,
            metadata=metadata,
            deadline=resolve_deadline(mode, deadline, self.carrier.settings.unary_deadline),
        )

    async def call_unary(
        self,
        method: str,
        request: Any,
        *,
        encoding: Encoding | str = Encoding.CBOR,
        metadata: Mapping[str, str] | None = None,
        deadline: Deadline = DEFAULT_DEADLINE,
    ) -> Any:
        """One request, one reply; raises the call's `StreamError` if it failed."""
        async with self.open_stream(
            method,
            mode=Mode.UNARY,
            encoding=encoding,
            metadata=metadata,
            deadline=deadline,
        ) as stream:
            await stream.send(request)
            return await stream.await_reply()

    async def call_client_stream(
        self,
        method: str,
        chunks: Iterable[Any] | AsyncIterable[Any],
        *,
        encoding: Encoding | str = Encoding.CBOR,
        metadata: Mapping[str, str] | None = None,
        deadline: float | None = None,
    ) -> Any:
        """Send every chunk, half-close, and return the server's reply."""
        async with self.open_stream(
            method,
            mode=Mode.CLIENT_STREAM,
            encoding=encoding,
            metadata=metadata,
            deadline=deadline,
        ) as stream:
            if isinstance(chunks, AsyncIterable):
                async for chunk in chunks:
                    await stream.send(chunk)
            else:
                for chunk in chunks:
                    await stream.send(chunk)
            await stream.close_send()
            return await stream.await_reply()

    async def call_server_stream(
        self,
        method: str,
        request: Any,
        *,
        encoding: Encoding | str = Encoding.CBOR,
        metadata: Mapping[str, str] | None = None,
        deadline: float | None = None,
    ) -> list[Any]:
        """Send the one request and collect every chunk of the answer (for small answers)."""
        async with self.open_stream(
            method,
            mode=Mode.SERVER_STREAM,
            encoding=encoding,
            metadata=metadata,
            deadline=deadline,
        ) as stream:
            await stream.send(request)
            return [chunk async for chunk in stream]

    async def aclose(self, reason: str = "") -> None:
        """Close the connection gracefully (BYE, wait for open streams within the close timeout)."""
        with trio.CancelScope(shield=True):
            await self.carrier.shutdown(reason)
