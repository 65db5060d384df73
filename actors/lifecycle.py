"""Starting, pairing and owning streams: `pair`, `open_stream`, `open_pair`.

A stream lives inside its owner's scope. `open_stream` runs the actor in a
nursery of its own: a normal exit closes the stream, an exception or a
cancellation aborts it with CANCELLED (the peer hears it), and the actor task
has ended before the `async with` does. `await nursery.start(stream.run)` is
the same without the context manager; the owner must then close or abort it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
from streamlet.codec.chunks import Encoding
from streamlet.codec.modes import Mode

from .actor import Stream
from .machine import DEFAULT_WINDOW
from .table import Role


def pair(a: Stream, b: Stream) -> None:
    """Link two local streams: each delivers into the other's mailbox, credit as on the wire."""
    if a.role is b.role:
        raise ValueError(f"pair needs a client and a server, got two {a.role.value}s")
    if a.mode is not b.mode or a.encoding is not b.encoding:
        raise ValueError("paired streams must agree on mode and encoding")
    a.link(b, window=b.window, max_chunk_size=b.max_chunk_size)
    b.link(a, window=a.window, max_chunk_size=a.max_chunk_size)


@asynccontextmanager
async def open_owner_nursery() -> AsyncIterator[trio.Nursery]:
    """A nursery whose body's own exception comes out as itself, not in an ExceptionGroup.

    Stream owners use it so a failing `async with` block raises what its body
    raised, as if there were no tasks behind it; errors of the tasks themselves
    still come out grouped.
    """
    body_error: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            try:
                yield nursery
            except BaseException as exc:
                body_error = exc  # the nursery cancels its tasks: each stream aborts with CANCELLED
                raise
    except BaseExceptionGroup as group:
        if body_error is not None and list(group.exceptions) == [body_error]:
            raise body_error from None
        raise


@asynccontextmanager
async def _owning(*streams: Stream) -> AsyncIterator[None]:
    """Run the streams' actors for the body; close them after it, or abort them if it fails."""
    async with open_owner_nursery() as nursery:
        for stream in streams:
            await nursery.start(stream.run)
        yield
        for stream in streams:
            await stream.close()


@asynccontextmanager
async def open_stream(
    *,
    id: int = 1,
    role: Role | str,
    mode: Mode | str,
    encoding: Encoding | str = Encoding.CBOR,
    window: int = DEFAULT_WINDOW,
    max_chunk_size: int | None = None,
) -> AsyncIterator[Stream]:
    """Start a stream's actor for the body of an `async with`; link it before using it."""
    stream = Stream(
        id=id,
        role=role,
        mode=mode,
        encoding=encoding,
        window=window,
        max_chunk_size=max_chunk_size,
    )
    async with _owning(stream):
        yield stream


@asynccontextmanager
async def open_pair(
    *,
    mode: Mode | str,
    encoding: Encoding | str = Encoding.CBOR,
    id: int = 1,
    window: int = DEFAULT_WINDOW,
    max_chunk_size: int | None = None,
) -> AsyncIterator[tuple[Stream, Stream]]:
    """A client and a server stream, already paired and running: the local testing story."""
    options = dict(id=id, mode=mode, encoding=encoding, window=window)
    client = Stream(role=Role.CLIENT, max_chunk_size=max_chunk_size, **options)  # type: ignore[arg-type]
    server = Stream(role=Role.SERVER, max_chunk_size=max_chunk_size, **options)  # type: ignore[arg-type]
    pair(client, server)
    async with _owning(client, server):
        yield client, server
