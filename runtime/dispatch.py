"""Dispatch: run one incoming stream's handler and turn its outcome into the stream's end.

The same code serves a stream that came over a carrier and one paired
in-process by `streamlet.testing.open_local`, so a handler behaves the same
under test as in production. Outcomes follow gRPC: an unknown method is
NOT_FOUND, a mode the handler does not serve is UNIMPLEMENTED, a `StreamError`
raised by the handler is sent as is, any other exception is INTERNAL with its
message (the traceback is logged here, never sent), and a passed deadline is
DEADLINE_EXCEEDED on both sides with the handler cancelled.
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final, Literal

import attrs
import trio
from streamlet.actors import Stream, StreamInfo
from streamlet.codec.chunks import Encoding
from streamlet.codec.modes import Mode
from streamlet.codec.status import StatusCode, StreamError

from .router import Route, Router

log = logging.getLogger("streamlet.dispatch")
stream_log = logging.getLogger("streamlet.streams")


DEFAULT_UNARY_DEADLINE: Final = 30.0  # seconds; streams have no deadline unless one is set


class _Default(enum.Enum):
    """The "default deadline" marker, distinct from None (no deadline at all)."""

    TOKEN = "default"


DEFAULT_DEADLINE: Final = _Default.TOKEN
Deadline = float | None | Literal[_Default.TOKEN]


def resolve_deadline(mode: Mode, deadline: Deadline, unary_default: float | None) -> float | None:
    """The deadline a call runs under: the caller's, else `unary_default` for a unary call."""
    if deadline is DEFAULT_DEADLINE:
        return unary_default if mode is Mode.UNARY else None
    return deadline


@attrs.frozen
class CallInfo:
    """What the opener said about a call (its STREAM_OPEN), as the handler sees it."""

    method: str
    mode: Mode
    encoding: Encoding
    metadata: Mapping[str, str] = attrs.field(factory=dict)
    deadline: float | None = None  # seconds, relative to receipt; None: no deadline


class ServerStream:
    """The stream as a handler sees it: chunks in and out, plus what the opener said.

    The reply is the handler's return value and errors are raised as
    `StreamError`, so the terminal calls of the underlying stream stay with
    the dispatcher.
    """

    __slots__ = ("_stream", "call", "deadline")

    def __init__(self, stream: Stream, call: CallInfo, deadline: float) -> None:
        self._stream = stream
        self.call = call
        self.deadline = deadline  # trio.current_time() value, or inf

    @property
    def id(self) -> int:
        return self._stream.id

    @property
    def method(self) -> str:
        return self.call.method

    @property
    def mode(self) -> Mode:
        return self.call.mode

    @property
    def metadata(self) -> Mapping[str, str]:
        return self.call.metadata

    async def send(self, chunk: Any) -> None:
        """Send one chunk to the client; waits while the client's window is spent."""
        await self._stream.send(chunk)

    async def recv(self) -> Any:
        """The client's next chunk; `trio.EndOfChannel` once it half-closed."""
        return await self._stream.recv()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._stream.__aiter__()

    def info(self) -> StreamInfo:
        """A snapshot of the underlying stream's state and counters."""
        return self._stream.info()


def _handler_failure(exc: Exception) -> StreamError:
    """The status a handler's exception ends its stream with: its own, or INTERNAL."""
    if isinstance(exc, StreamError):
        return exc
    message = str(exc) or type(exc).__name__
    return StreamError(StatusCode.INTERNAL, message)


async def _run_route(route: Route, stream: Stream, handler_stream: ServerStream) -> None:
    """Call the handler as its mode says, and end the stream with its return value."""
    mode = route.mode
    if route.takes_request:
        try:
            request = await stream.recv()
        except trio.EndOfChannel:
            raise StreamError(
                StatusCode.INVALID_ARGUMENT, f"{route.method}: the client sent no request"
            ) from None
        args: tuple[Any, ...] = (request, handler_stream) if route.takes_stream else (request,)
    else:
        args = (handler_stream,)
    result = await route.handler(*args)
    if mode is Mode.SERVER_STREAM:
        if result is not None:
            raise TypeError(
                f"server_stream handler {route.method} returned {type(result).__name__}; "
                "it sends chunks and returns None"
            )
    elif mode is not Mode.BIDI or result is not None:  # a bidi handler returning None ends
        await stream.reply(result)


async def _watch_peer(stream: Stream, scope: trio.CancelScope, seen: list[StreamError]) -> None:
    """Cancel the handler once the client has gone: aborted, cancelled or disconnected."""
    seen.append(await stream.wait_reset())
    scope.cancel()


async def serve_stream(router: Router, stream: Stream, call: CallInfo) -> None:
    """Run an incoming stream: its actor task and its handler, until both are done.

    `stream` is a server-role stream, linked to its peer and not yet running.
    Every outcome, good or bad, ends the stream and reaches the client; this
    only raises `trio.Cancelled` (the connection is going away). One log line
    (logger `streamlet.streams`, INFO) marks the stream's start and one its end.
    """
    started = trio.current_time()
    deadline = math.inf if call.deadline is None else started + call.deadline
    stream_log.info("stream %d open: %s (%s)", stream.id, call.method, call.mode.value)
    peer_error: list[StreamError] = []
    failure: StreamError | None = None
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(stream.run)
            admitted = await _admit(router, call)
            if isinstance(admitted, StreamError):
                failure = admitted
            else:
                handler_stream = ServerStream(stream, call, deadline)
                with trio.CancelScope(deadline=deadline) as scope:
                    nursery.start_soon(_watch_peer, stream, scope, peer_error)
                    try:
                        await _run_route(admitted, stream, handler_stream)
                    except Exception as exc:
                        failure = _handler_failure(exc)
                        if failure is not exc:
                            log.exception("handler %s failed", call.method)
                if scope.cancelled_caught and failure is None and trio.current_time() >= deadline:
                    failure = deadline_exceeded(call.method, call.deadline)
            if failure is not None:
                await stream.abort(failure.code, failure.message, failure.details)
            else:
                await stream.close()
            nursery.cancel_scope.cancel()  # the watcher, if the stream ended well
    finally:
        ended = failure or (peer_error[0] if peer_error else None)
        _log_end(stream, call, ended, trio.current_time() - started)


def _log_end(stream: Stream, call: CallInfo, error: StreamError | None, seconds: float) -> None:
    """The line `streamlet serve` prints when a stream ends: status, traffic, duration."""
    info = stream.info()
    stream_log.info(
        "stream %d end: %s (%s) %s, in %d chunks %d B, out %d chunks %d B, %.3f s",
        stream.id,
        call.method,
        call.mode.value,
        "OK" if error is None else f"{error.code.name} {error.message!r}",
        info.chunks_received,
        info.bytes_received,
        info.chunks_sent,
        info.bytes_sent,
        seconds,
    )


async def _admit(router: Router, call: CallInfo) -> Route | StreamError:
    """The route that serves the call, or the error that refuses it before a handler runs."""
    route = router.route(call.method)
    if route is None:
        return StreamError(StatusCode.NOT_FOUND, f"no handler for method {call.method!r}")
    if route.mode is not call.mode:
        return StreamError(
            StatusCode.UNIMPLEMENTED,
            f"method {call.method!r} is served as {route.mode.value}, not {call.mode.value}",
        )
    if router.gate is not None:
        try:
            await router.gate(call.method, call.metadata)
        except StreamError as refused:
            return refused
        except Exception as exc:
            log.exception("stream gate failed for %s", call.method)
            return _handler_failure(exc)
    return route


def deadline_exceeded(method: str, seconds: float | None) -> StreamError:
    """The error both sides of a call end with when its deadline passes."""
    return StreamError(
        StatusCode.DEADLINE_EXCEEDED, f"{method}: deadline of {seconds:g} s exceeded"
    )


async def enforce_deadline(stream: Stream, method: str, seconds: float) -> None:
    """Client side: abort `stream` with DEADLINE_EXCEEDED once `seconds` have passed.

    The server enforces the same deadline (it rides in STREAM_OPEN); this one
    fires even when the server or the connection has gone silent. Run it in
    a nursery and cancel it when the stream is done.
    """
    await trio.sleep(seconds)
    error = deadline_exceeded(method, seconds)
    await stream.abort(error.code, error.message)
