"""`streamlet call ADDRESS METHOD --mode MODE`: one call from the shell, like grpcurl.

Requests and chunks are JSON on the command line and stdin (NDJSON, one chunk
a line, sent as each line is read), CBOR on the wire. Every chunk received is
printed as one NDJSON line on stdout, flushed at once, then the reply (unary,
client_stream, and bidi when the handler returns a value). Bytes print as
base64 strings. A failed call prints `STATUS_NAME: message` on stderr and
exits with the gRPC status number.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import math
import ssl
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any, BinaryIO, TextIO

import attrs
import cbor2
import trio
from streamlet.actors import ChunkTooLargeError, Stream, open_owner_nursery
from streamlet.codec import Mode, StatusCode, StreamError

from .carrier_errors import CarrierError
from .cli_common import Address, UsageError
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


def run_call(call: CallRequest, *, stdin: BinaryIO | None = None, out: TextIO | None = None) -> int:
    """Make the call; returns 0, or the gRPC status number of the call's failure."""
    source = sys.stdin.buffer if stdin is None else stdin
    sink = sys.stdout if out is None else out
    try:
        trio.run(_call, call, source, sink)
    except StreamError as exc:
        print(f"{exc.code.name}: {exc.message}", file=sys.stderr)
        if exc.details:
            print(f"details: {json.dumps(to_json(exc.details))}", file=sys.stderr)
        return int(exc.code)
    return 0


async def _call(call: CallRequest, stdin: BinaryIO, out: TextIO) -> None:
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
        if call.mode in (Mode.UNARY, Mode.SERVER_STREAM):
            await _send(stream, call.data, "the --data request")
        if call.mode is Mode.BIDI:
            await _bidi(stream, stdin, out)
            return
        if call.mode is Mode.CLIENT_STREAM:
            await _send_stdin(stream, stdin)
        if call.mode is Mode.SERVER_STREAM:
            async for chunk in stream:
                print_json(chunk, out)
        else:
            print_json(await stream.await_reply(), out)


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


async def _bidi(stream: Stream, stdin: BinaryIO, out: TextIO) -> None:
    """Send stdin's chunks while printing the server's; then its reply, if it sends one."""
    bad_input: list[UsageError] = []

    async def send_all() -> None:
        try:
            await _send_stdin(stream, stdin)
        except UsageError as exc:
            bad_input.append(exc)
            await stream.abort(StatusCode.CANCELLED, "bad input on the caller's stdin")
        except StreamError:
            pass  # the stream failed: the receiving side below reports why

    try:
        async with open_owner_nursery() as nursery:
            nursery.start_soon(send_all)
            async for chunk in stream:
                print_json(chunk, out)
            with contextlib.suppress(trio.EndOfChannel):  # the handler ended with END: no reply
                print_json(await stream.await_reply(), out)
            nursery.cancel_scope.cancel()  # the server is done: stop reading stdin
    except StreamError:
        if bad_input:
            raise bad_input[0] from None
        raise


async def _send_stdin(stream: Stream, stdin: BinaryIO) -> None:
    """Send each NDJSON line of stdin as a chunk, as it is read; half-close at EOF."""
    async for number, value in read_ndjson(stdin):
        await _send(stream, value, f"stdin line {number}")
    await stream.close_send()


async def _send(stream: Stream, value: Any, what: str) -> None:
    try:
        await stream.send(value)
    except ChunkTooLargeError as exc:
        raise UsageError(f"{what} is too large to send: {exc}") from None


async def read_ndjson(stdin: BinaryIO) -> AsyncIterator[tuple[int, Any]]:
    """(line number, value) for each non-blank line of `stdin`, read in a worker thread."""
    number = 0
    while True:
        line = await trio.to_thread.run_sync(stdin.readline, abandon_on_cancel=True)
        if not line:
            return
        number += 1
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            text = line.decode("utf-8", "replace").strip()
            shown = text if len(text) <= 60 else text[:57] + "..."
            raise UsageError(
                f"stdin line {number} is not JSON ({exc}): {shown!r}; client_stream and bidi "
                "calls read one JSON value a line (NDJSON)"
            ) from None
        yield number, value


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
