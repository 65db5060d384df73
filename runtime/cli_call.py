"""`streamlet call ADDRESS METHOD --mode MODE`: one call from the shell, like grpcurl.

Requests and chunks are JSON on the command line and stdin (NDJSON, one chunk
a line, sent as each line is read), CBOR on the wire. Every chunk received is
printed as one NDJSON line on stdout, flushed at once, then the reply (unary,
client_stream, and bidi when the handler returns a value). Bytes print as
base64 strings. A failed call prints `STATUS_NAME: message` on stderr and
exits with 64 + the gRPC status number.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import math
import os
import ssl
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any, Final, TextIO

import attrs
import cbor2
import trio
from streamlet.actors import ChunkTooLargeError, Stream, StreamStateError, open_owner_nursery
from streamlet.codec import Mode, StatusCode, StreamError

from .carrier_errors import CarrierError
from .cli_common import STATUS_EXIT_BASE, Address, UsageError
from .endpoints import connect_tcp, connect_unix
from .peer import Peer


@attrs.frozen
class CallRequest:
    """One `streamlet call`, as parsed from its command line."""

    address: Address
    method: str
    mode: Mode
    data: Any = None  # the request of a unary or server_stream call
    metadata: Mapping[str, str] = attrs.field(factory=dict)
    deadline: float | None = None
    ssl_context: ssl.SSLContext | None = None
    server_name: str | None = None


def build_request(
    address: Address,
    method: str,
    mode: str,
    *,
    data: str | None,
    metadata: list[str],
    deadline: float | None,
    tls: bool,
    ca: str | None,
    server_name: str | None,
) -> CallRequest:
    """Check the command line's values and turn them into a `CallRequest` (or a `UsageError`)."""
    call_mode = Mode(mode)
    request: Any = None
    if data is not None:
        if call_mode not in (Mode.UNARY, Mode.SERVER_STREAM):
            raise UsageError(
                f"--data is the request of a unary or server_stream call; a {call_mode.value} "
                "call reads its chunks from stdin, one JSON value a line"
            )
        try:
            request = json.loads(data)
        except ValueError as exc:
            raise UsageError(f"--data is not JSON ({exc}): {data!r}") from None
    pairs: dict[str, str] = {}
    for item in metadata:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--metadata takes KEY=VALUE, got {item!r}")
        pairs[key] = value
    if deadline is not None and not (math.isfinite(deadline) and deadline > 0):
        raise UsageError(f"--deadline must be a number of seconds > 0, got {deadline:g}")
    context = None
    if tls or ca is not None:
        if address.unix_path is not None:
            raise UsageError("--tls and --ca are for HOST:PORT; a Unix socket has no TLS")
        context = ssl.create_default_context()
        if ca is not None:
            try:
                context.load_verify_locations(ca)
            except (OSError, ssl.SSLError) as exc:
                raise UsageError(f"--ca {ca}: not a readable PEM CA certificate: {exc}") from None
    elif server_name is not None:
        raise UsageError("--server-name is for TLS: add --tls")
    return CallRequest(
        address=address,
        method=method,
        mode=call_mode,
        data=request,
        metadata=pairs,
        deadline=deadline,
        ssl_context=context,
        server_name=server_name,
    )


def run_call(call: CallRequest, *, stdin_fd: int = 0, out: TextIO | None = None) -> int:
    """Make the call; returns 0, or 64 + the gRPC status number of the call's failure.

    client_stream and bidi calls read their chunks from the file descriptor
    `stdin_fd` (standard input by default).
    """
    sink = sys.stdout if out is None else out
    try:
        trio.run(_call, call, stdin_fd, sink)
    except BrokenPipeError:  # stdout's reader left (`| head -1`): stop quietly, as cat does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except StreamError as exc:
        print(f"{exc.code.name}: {exc.message}", file=sys.stderr)
        if exc.details:
            print(f"details: {json.dumps(to_json(exc.details))}", file=sys.stderr)
        return STATUS_EXIT_BASE + int(exc.code)
    return 0


async def _call(call: CallRequest, stdin_fd: int, out: TextIO) -> None:
    async with AsyncExitStack() as stack:
        try:
            peer = await stack.enter_async_context(_connect(call))
        except (OSError, CarrierError) as exc:
            raise StreamError(
                StatusCode.UNAVAILABLE, f"cannot connect to {call.address}: {_why(exc)}"
            ) from None
        deadline = call.deadline
        if deadline is None and call.mode is Mode.UNARY:
            deadline = peer.carrier.settings.unary_deadline
        try:
            stream = await stack.enter_async_context(
                peer.open_stream(
                    call.method, mode=call.mode, metadata=call.metadata, deadline=deadline
                )
            )
        except ValueError as exc:  # what the wire cannot carry: an oversized name or metadata
            raise UsageError(str(exc)) from None
        if call.mode is Mode.UNARY:
            await _send(stream, call.data, "the --data request")
            print_json(await stream.await_reply(), out)
        elif call.mode is Mode.SERVER_STREAM:
            await _send(stream, call.data, "the --data request")
            async for chunk in stream:
                print_json(chunk, out)
        else:
            await _stream_stdin(stream, call.mode, stdin_fd, out)


def _why(exc: BaseException) -> str:
    """An error with the first cause trio wrapped in it (connect failures are grouped)."""
    cause = exc.__cause__
    while isinstance(cause, BaseExceptionGroup):
        cause = cause.exceptions[0]
    return f"{exc} ({cause})" if cause is not None and str(cause) not in str(exc) else str(exc)


def _connect(call: CallRequest) -> AbstractAsyncContextManager[Peer]:
    address = call.address
    if address.unix_path is not None:
        return connect_unix(address.unix_path)
    assert address.host is not None
    return connect_tcp(
        address.host,
        address.port,
        ssl_context=call.ssl_context,
        server_hostname=call.server_name,
    )


async def _stream_stdin(stream: Stream, mode: Mode, stdin_fd: int, out: TextIO) -> None:
    """client_stream and bidi: send stdin's chunks while waiting for the server's answer.

    The answer is printed as it comes (bidi chunks, then the reply if there is
    one). Receiving runs beside sending, so an error or a deadline ends the
    call at once even while stdin is quiet, and once the server is done the
    rest of stdin is not read.
    """
    bad_input: list[UsageError] = []

    async def send_stdin() -> None:
        try:
            async for number, value in read_ndjson(stdin_fd):
                await _send(stream, value, f"stdin line {number}")
            await stream.close_send()
        except UsageError as exc:
            bad_input.append(exc)
            await stream.abort(StatusCode.CANCELLED, "bad input on the caller's stdin")
        except StreamStateError:
            pass  # the stream ended or failed first: the receiving side reports how

    try:
        async with open_owner_nursery() as nursery:
            nursery.start_soon(send_stdin)
            if mode is Mode.BIDI:
                async for chunk in stream:
                    print_json(chunk, out)
                with contextlib.suppress(trio.EndOfChannel):  # the handler ended with END
                    print_json(await stream.await_reply(), out)
            else:
                print_json(await stream.await_reply(), out)
            nursery.cancel_scope.cancel()  # the server is done: stop reading stdin
    except StreamError:
        if bad_input:
            raise bad_input[0] from None
        raise


async def _send(stream: Stream, value: Any, what: str) -> None:
    try:
        await stream.send(value)
    except ChunkTooLargeError as exc:
        raise UsageError(f"{what} is too large to send: {exc}") from None


READ_SIZE: Final = 64 * 1024


async def read_ndjson(fd: int) -> AsyncIterator[tuple[int, Any]]:
    """(line number, value) for each non-blank line read from `fd`, as soon as it arrives.

    Reads run in a worker thread straight on the descriptor (no buffered
    reader, whose lock an abandoned thread would hold), so a cancelled read
    is simply left behind.
    """
    number = 0
    pending = b""
    while True:
        data = await trio.to_thread.run_sync(os.read, fd, READ_SIZE, abandon_on_cancel=True)
        pending += data
        lines = pending.split(b"\n")
        pending = lines.pop() if data else b""
        for line in lines:
            number += 1
            if line.strip():
                yield number, _parse_line(number, line)
        if not data:
            return


def _parse_line(number: int, line: bytes) -> Any:
    try:
        return json.loads(line)
    except ValueError as exc:
        text = line.decode("utf-8", "replace").strip()
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise UsageError(
            f"stdin line {number} is not JSON ({exc}): {shown!r}; client_stream and bidi "
            "calls read one JSON value a line (NDJSON)"
        ) from None


def print_json(value: Any, out: TextIO) -> None:
    """One value as one JSON line, flushed at once."""
    out.write(json.dumps(to_json(value), ensure_ascii=False, allow_nan=False) + "\n")
    out.flush()


def to_json(value: Any) -> Any:
    """A decoded CBOR value as JSON values: bytes as base64 strings, other types as text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Mapping):
        return {_json_key(key): to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(item) for item in value]
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, cbor2.CBORTag):
        return {"tag": value.tag, "value": to_json(value.value)}
    return str(value)


def _json_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    converted = to_json(key)
    return converted if isinstance(converted, str) else json.dumps(converted)
