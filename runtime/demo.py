"""The demo router, a scripted tour of the four call modes, and a large checked transfer.

`streamlet demo` runs them: each step prints what it sends and receives and
checks the outcome it expects, so the command doubles as a smoke test. The
transfer pushes hundreds of MiB through one stream and compares SHA-256
digests taken on both ends, to show that flow control keeps memory bounded
while the bytes arrive intact and in order.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Final, Protocol

import attrs
import trio
from streamlet.codec.chunks import Encoding
from streamlet.codec.modes import Mode
from streamlet.codec.status import StatusCode, StreamError

from .dispatch import ServerStream
from .router import Router


class Opener(Protocol):
    """How the tour reaches the router: in-process, or over a connection."""

    def __call__(
        self,
        method: str,
        *,
        mode: Mode | str,
        encoding: Encoding | str = ...,
        deadline: float | None = None,
    ) -> AbstractAsyncContextManager[Any]: ...


MIB: Final = 1024 * 1024
CHUNK_SIZE: Final = MIB  # the transfer's raw chunks: the default window's whole size


demo_router = Router()


@demo_router.unary("add")
async def add(request: Mapping[str, int]) -> int:
    """One request in, one reply out."""
    return request["a"] + request["b"]


@demo_router.server_stream("ticks")
async def ticks(request: Mapping[str, int], stream: ServerStream) -> None:
    """One request in, `n` chunks out."""
    for i in range(request["n"]):
        await stream.send({"i": i})


@demo_router.client_stream("total")
async def total(stream: ServerStream) -> int:
    """Many chunks in, their sum out."""
    return sum([chunk async for chunk in stream])


@demo_router.bidi("echo")
async def echo(stream: ServerStream) -> None:
    """Every chunk straight back."""
    async for chunk in stream:
        await stream.send(chunk)


@demo_router.unary("sleepy")
async def sleepy(request: float) -> str:
    """Sleeps longer than the caller's deadline allows."""
    await trio.sleep(request)
    return "woke up"


@demo_router.client_stream("upload")
async def upload(stream: ServerStream) -> bytes:
    """Raw chunks in; out, their total size (8 bytes, big-endian) and SHA-256 digest."""
    digest = hashlib.sha256()
    size = 0
    async for chunk in stream:
        digest.update(chunk)
        size += len(chunk)
    return size.to_bytes(8, "big") + digest.digest()


class DemoFailed(Exception):
    """A step of the tour did not behave as expected."""


def _expect(what: str, got: object, want: object) -> None:
    if got != want:
        raise DemoFailed(f"{what}: expected {want!r}, got {got!r}")


async def run_tour(open_stream: Opener, say: Callable[[str], None]) -> None:
    """Run each mode once, an abort and a deadline; raise `DemoFailed` on a surprise."""
    say("unary add {a: 2, b: 40}")
    async with open_stream("add", mode="unary") as s:
        await s.send({"a": 2, "b": 40})
        reply = await s.await_reply()
    say(f"  reply {reply}")
    _expect("add", reply, 42)

    say("server_stream ticks {n: 3}")
    async with open_stream("ticks", mode="server_stream") as s:
        await s.send({"n": 3})
        got = []
        async for chunk in s:
            say(f"  chunk {chunk}")
            got.append(chunk)
    say("  end")
    _expect("ticks", got, [{"i": 0}, {"i": 1}, {"i": 2}])

    say("client_stream total 1..10")
    async with open_stream("total", mode="client_stream") as s:
        for i in range(1, 11):
            await s.send(i)
        await s.close_send()
        reply = await s.await_reply()
    say(f"  reply {reply}")
    _expect("total", reply, 55)

    say("bidi echo, then abort mid-stream")
    async with open_stream("echo", mode="bidi") as s:
        for word in ("ping", "pong"):
            await s.send(word)
            echoed = await s.recv()
            say(f"  sent {word!r}, echoed {echoed!r}")
            _expect("echo", echoed, word)
        await s.abort(StatusCode.CANCELLED, "demo aborts the call")
        try:
            await s.recv()
        except StreamError as exc:
            say(f"  after abort: {exc}")
            _expect("abort status", exc.code, StatusCode.CANCELLED)
        else:
            raise DemoFailed("recv after abort returned a chunk")

    say("unary sleepy 5 s with a 0.2 s deadline")
    async with open_stream("sleepy", mode="unary", deadline=0.2) as s:
        await s.send(5.0)
        try:
            await s.await_reply()
        except StreamError as exc:
            say(f"  {exc}")
            _expect("deadline status", exc.code, StatusCode.DEADLINE_EXCEEDED)
        else:
            raise DemoFailed("the deadline did not fire")


@attrs.frozen
class Transfer:
    """What the large transfer moved, how fast, and the digest both ends agreed on."""

    size: int  # bytes
    seconds: float
    sha256: str

    @property
    def mib_per_second(self) -> float:
        return self.size / MIB / self.seconds if self.seconds > 0 else float("inf")


async def run_transfer(
    open_stream: Opener,
    size_mib: int,
    say: Callable[[str], None],
    progress: Callable[[int], None],
) -> Transfer:
    """Upload `size_mib` MiB in 1 MiB raw chunks and check the server's size and SHA-256.

    Chunk `i` is a random block with `i` stamped in its first 8 bytes, so a
    lost, repeated or reordered chunk changes the digest. `progress` gets the
    bytes sent so far after each chunk. Raises `DemoFailed` on a mismatch.
    """
    if size_mib < 1:
        raise ValueError(f"the transfer size must be at least 1 MiB, got {size_mib}")
    say(f"client_stream upload: {size_mib} MiB in 1 MiB raw chunks, SHA-256 on both ends")
    block = bytearray(os.urandom(CHUNK_SIZE))
    digest = hashlib.sha256()
    started = trio.current_time()
    async with open_stream("upload", mode="client_stream", encoding=Encoding.RAW) as s:
        for index in range(size_mib):
            block[:8] = index.to_bytes(8, "big")
            chunk = bytes(block)
            digest.update(chunk)
            await s.send(chunk)
            progress((index + 1) * CHUNK_SIZE)
        await s.close_send()
        reply = await s.await_reply()
    seconds = trio.current_time() - started
    size = size_mib * CHUNK_SIZE
    received, server_digest = int.from_bytes(reply[:8], "big"), reply[8:].hex()
    say(f"  server received {received:,} B, SHA-256 {server_digest[:16]}...")
    _expect("bytes received", received, size)
    _expect("SHA-256", server_digest, digest.hexdigest())
    transfer = Transfer(size, seconds, server_digest)
    say(f"  digests match; {size_mib} MiB in {seconds:.2f} s: {transfer.mib_per_second:.0f} MiB/s")
    return transfer
