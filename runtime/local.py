"""In-process calls: a router's handler served over a local pair, no carrier, no socket.

This is how users test their handlers: the client stream is paired with a
server stream in the same trio run and the handler runs through the same
dispatch as over a connection, with the same credit, deadlines and statuses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import trio
from streamlet.actors import DEFAULT_WINDOW, Role, Stream, open_owner_nursery, open_stream, pair
from streamlet.codec.chunks import Encoding
from streamlet.codec.modes import Mode

from .dispatch import (
    DEFAULT_DEADLINE,
    DEFAULT_UNARY_DEADLINE,
    CallInfo,
    Deadline,
    enforce_deadline,
    resolve_deadline,
    serve_stream,
)
from .router import Router


@asynccontextmanager
async def open_local(
    router: Router,
    method: str,
    *,
    mode: Mode | str,
    encoding: Encoding | str = Encoding.CBOR,
    metadata: Mapping[str, str] | None = None,
    deadline: Deadline = DEFAULT_DEADLINE,
    window: int = DEFAULT_WINDOW,
) -> AsyncIterator[Stream]:
    """Open a client stream to `router`'s `method`, served in-process for the body.

    Leaving the block closes the stream (an exception in it aborts the call
    with CANCELLED, and the handler is cancelled); it returns once the handler
    has finished, so no task outlives the block. A unary call gets a 30 s
    deadline unless `deadline` is given (None: none), as over a connection.
    """
    mode, encoding = Mode(mode), Encoding(encoding)
    deadline = resolve_deadline(mode, deadline, DEFAULT_UNARY_DEADLINE)
    if deadline is not None and not deadline > 0:
        raise ValueError(f"a deadline must be > 0 seconds, got {deadline!r}")
    call = CallInfo(method, mode, encoding, dict(metadata or {}), deadline)
    async with (
        open_owner_nursery() as nursery,
        open_stream(id=1, role=Role.CLIENT, mode=mode, encoding=encoding, window=window) as client,
    ):
        server = Stream(id=1, role=Role.SERVER, mode=mode, encoding=encoding, window=window)
        pair(client, server)
        nursery.start_soon(serve_stream, router, server, call)
        timer = trio.CancelScope()
        if deadline is not None:
            nursery.start_soon(_timer, timer, client, method, deadline)
        try:
            yield client
        finally:
            timer.cancel()


async def _timer(scope: trio.CancelScope, client: Stream, method: str, deadline: float) -> None:
    """The client's own deadline, cancelled through `scope` when the block ends first."""
    with scope:
        await enforce_deadline(client, method, deadline)
