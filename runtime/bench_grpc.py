"""The same workloads through grpcio, when it is installed: streamlet beside gRPC's Python API.

grpcio is optional (`pip install 'streamlet[bench]'`); without it these
benchmarks report themselves skipped. The gRPC side uses `grpc.aio` with a
generic handler and no serializers, so raw bytes cross with no protobuf and
no code generation; server and client share one asyncio loop in this process,
as streamlet's two ends share one trio loop. Same loopback TCP, same 64-byte
chunks, same counts, measured in the same run; these are comparisons, with
no target.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from types import ModuleType
from typing import Any, Final

from .bench_cases import (
    CHUNK_SIZE,
    HOST,
    PING_WARMUP,
    chunks,
    latency_sample,
    tcp_chunks,
    tcp_ping_pong,
)
from .bench_model import Benchmark, Better, Sample, Size, Skip, Target

SERVICE: Final = "streamlet.bench"
NOT_INSTALLED: Final = "grpcio not installed (pip install 'streamlet[bench]')"


def check_grpc() -> None:
    """Raise `Skip` when grpcio is not importable here."""
    if importlib.util.find_spec("grpc") is None:
        raise Skip(NOT_INSTALLED)


def _grpc() -> ModuleType:
    """grpcio's `grpc` package with `grpc.aio` loaded (an optional dependency, so untyped here)."""
    check_grpc()
    # gRPC core logs each GOAWAY of a stopping server at INFO on stderr; keep the
    # benchmark output to its results unless the user asked for more.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    importlib.import_module("grpc.aio")
    return importlib.import_module("grpc")


Handlers = dict[str, Any]


async def _with_server(handlers: Handlers, body: Callable[[Any], Awaitable[Any]]) -> Any:
    """Serve `handlers` on 127.0.0.1 (a free port), run `body(channel)`, stop the server."""
    grpc = _grpc()
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port(f"{HOST}:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"{HOST}:{port}") as channel:
            await channel.channel_ready()
            return await body(channel)
    finally:
        await server.stop(None)


async def _grpc_ticks(items: list[bytes]) -> float:
    grpc = _grpc()

    async def ticks(request: bytes, context: Any) -> AsyncIterator[bytes]:
        for chunk in items:
            yield chunk

    handlers = {"Ticks": grpc.unary_stream_rpc_method_handler(ticks)}

    async def body(channel: Any) -> float:
        call = channel.unary_stream(f"/{SERVICE}/Ticks")
        start = time.perf_counter()
        received = 0
        async for chunk in call(b"go"):
            received += 1
            del chunk
        seconds = time.perf_counter() - start
        if received != len(items):
            raise RuntimeError(f"grpc ticks: {received} chunks received of {len(items)}")
        return seconds

    seconds: float = await _with_server(handlers, body)
    return seconds


def grpc_server_stream_chunks(size: Size) -> Sample:
    """Chunks/s of 64 bytes on one grpcio server-streaming call over loopback TCP."""
    seconds = asyncio.run(_grpc_ticks(chunks(size.items)))
    return Sample(size.items / seconds)


async def _grpc_ping_pong(count: int) -> Sample:
    grpc = _grpc()
    chunk = chunks(1)[0]

    async def echo(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        async for request in requests:
            yield request

    handlers = {"Echo": grpc.stream_stream_rpc_method_handler(echo)}

    async def body(channel: Any) -> Sample:
        call = channel.stream_stream(f"/{SERVICE}/Echo")()
        for _ in range(PING_WARMUP):
            await call.write(chunk)
            await call.read()
        latencies: list[float] = []
        start = time.perf_counter()
        for _ in range(count):
            sent = time.perf_counter()
            await call.write(chunk)
            answer = await call.read()
            latencies.append(time.perf_counter() - sent)
            if len(answer) != CHUNK_SIZE:
                raise RuntimeError("grpc echo: a wrong answer")
        seconds = time.perf_counter() - start
        await call.done_writing()
        if await call.code() != grpc.StatusCode.OK:
            raise RuntimeError(f"grpc echo ended with {await call.code()}")
        return latency_sample(latencies, seconds)

    sample: Sample = await _with_server(handlers, body)
    return sample


def grpc_ping_pong(size: Size) -> Sample:
    """The 64-byte ping-pong on one grpcio bidi-streaming call over loopback TCP; p50 in µs."""
    return asyncio.run(_grpc_ping_pong(size.items))


CASES: Final = (
    Benchmark(
        name="grpc_server_stream_64b",
        description="streamlet raw server_stream over loopback TCP vs grpcio (grpc.aio), "
        "64-byte chunks one way",
        unit="chunks/s",
        subject=tcp_chunks,
        baseline_name="grpcio",
        baseline=grpc_server_stream_chunks,
        target=Target(),
        better=Better.HIGHER,
        full=Size(items=30_000, repeats=3),
        quick=Size(items=2_000, repeats=1),
        settings="streamlet ConnectionSettings() defaults; grpc.aio defaults, insecure channel",
        check=check_grpc,
    ),
    Benchmark(
        name="grpc_ping_pong",
        description="streamlet bidi raw 64-byte ping-pong over loopback TCP (p50) vs grpcio "
        "(grpc.aio) bidi streaming",
        unit="µs p50",
        subject=tcp_ping_pong,
        baseline_name="grpcio",
        baseline=grpc_ping_pong,
        target=Target(),
        better=Better.LOWER,
        full=Size(items=5_000, repeats=3),
        quick=Size(items=200, repeats=1),
        settings="streamlet ConnectionSettings() defaults; grpc.aio defaults, insecure channel",
        check=check_grpc,
    ),
)
