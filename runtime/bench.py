"""Benchmarks, each figure beside a baseline measured in the same run.

The machines this runs on are shared and noisy, so an absolute figure says
little: every benchmark times its subject (streamlet) and a baseline (the bare
trio or socket equivalent) on the same objects, interleaving their runs so a
noisy moment hits both, keeps the best run of each, and reports the ratio
against a target ratio. `run_benchmarks` runs them and prints the results;
`streamlet bench [--json] [--quick]` is a thin wrapper around it.

Adding one: write two `Measure` functions (a sync callable that takes the
`Size` and returns one figure, usually by `trio.run` of an async body) and
register a `Benchmark` in `BENCHMARKS`.
"""

from __future__ import annotations

import enum
import json as json_module
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, TextIO

import attrs
import trio
from streamlet.actors import open_pair


class Better(enum.Enum):
    """Which way a figure improves: throughput goes up, latency and memory go down."""

    HIGHER = "higher"
    LOWER = "lower"


@attrs.frozen
class Size:
    """How much work one measurement does: the full run, or a quick one for smoke tests."""

    items: int  # chunks, round trips or streams, as the benchmark counts them
    repeats: int  # interleaved (baseline, subject) runs; the best of each is kept


Measure = Callable[[Size], float]


@attrs.frozen
class Benchmark:
    """A subject and its baseline, measured in the same unit, and the ratio it should reach."""

    name: str
    description: str
    unit: str
    subject: Measure
    baseline_name: str
    baseline: Measure
    target_ratio: float  # subject / baseline; met when at least this (HIGHER) or at most (LOWER)
    better: Better
    full: Size
    quick: Size


@attrs.frozen
class Result:
    """One benchmark's figures: the subject, its same-run baseline, their ratio and the target."""

    name: str
    figure: float
    unit: str
    baseline_name: str
    baseline_figure: float
    ratio: float  # figure / baseline_figure
    target_ratio: float
    better: Better
    met: bool
    runs: int  # how many runs of each side the figures are the best of

    def to_json(self) -> dict[str, object]:
        """The record as plain JSON values."""
        return {
            "name": self.name,
            "figure": self.figure,
            "unit": self.unit,
            "baseline_name": self.baseline_name,
            "baseline_figure": self.baseline_figure,
            "ratio": self.ratio,
            "target_ratio": self.target_ratio,
            "better": self.better.value,
            "met": self.met,
            "runs": self.runs,
        }


def measure(benchmark: Benchmark, *, quick: bool) -> Result:
    """Run the subject and baseline alternately, keep each one's best run, compare them.

    The order flips every round so neither side always runs first (warm caches,
    a garbage collection left over from the other side).
    """
    size = benchmark.quick if quick else benchmark.full
    best = max if benchmark.better is Better.HIGHER else min
    subjects: list[float] = []
    baselines: list[float] = []
    for round_ in range(size.repeats):
        if round_ % 2:
            subjects.append(benchmark.subject(size))
            baselines.append(benchmark.baseline(size))
        else:
            baselines.append(benchmark.baseline(size))
            subjects.append(benchmark.subject(size))
    figure, baseline = best(subjects), best(baselines)
    if figure <= 0 or baseline <= 0:
        raise RuntimeError(f"benchmark {benchmark.name} measured a non-positive figure")
    ratio = figure / baseline
    met = (
        ratio >= benchmark.target_ratio
        if benchmark.better is Better.HIGHER
        else ratio <= benchmark.target_ratio
    )
    return Result(
        name=benchmark.name,
        figure=figure,
        unit=benchmark.unit,
        baseline_name=benchmark.baseline_name,
        baseline_figure=baseline,
        ratio=ratio,
        target_ratio=benchmark.target_ratio,
        better=benchmark.better,
        met=met,
        runs=size.repeats,
    )


def format_result(result: Result) -> str:
    """One line: the figure, the baseline's, the ratio against its target, and whether it is met."""
    sign = ">=" if result.better is Better.HIGHER else "<="
    verdict = "met" if result.met else "NOT met"
    return (
        f"{result.name}: {result.figure:,.0f} {result.unit} vs {result.baseline_name} "
        f"{result.baseline_figure:,.0f} {result.unit}: ratio {result.ratio:.2f} "
        f"(target {sign} {result.target_ratio:.2f}, {verdict}; best of {result.runs})"
    )


def print_results(results: Sequence[Result], *, json: bool, file: TextIO | None = None) -> None:
    """Print the results as lines of text, or as one JSON document (a list of records)."""
    out = sys.stdout if file is None else file
    if json:
        print(json_module.dumps([r.to_json() for r in results], indent=2), file=out, flush=True)
    else:
        for result in results:
            print(format_result(result), file=out, flush=True)


def run_benchmarks(
    names: list[str] | None, *, quick: bool, json: bool, file: TextIO | None = None
) -> list[Result]:
    """Run the named benchmarks (all when `names` is None or empty), print them, return them.

    Text mode prints each result as soon as it is measured; JSON mode prints one
    document at the end. An unknown name raises `ValueError` before anything runs.
    """
    chosen = names if names else list(BENCHMARKS)
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        raise ValueError(f"unknown benchmark(s) {unknown}; known: {sorted(BENCHMARKS)}")
    results: list[Result] = []
    for name in chosen:
        result = measure(BENCHMARKS[name], quick=quick)
        results.append(result)
        if not json:
            print_results([result], json=False, file=file)
    if json:
        print_results(results, json=True, file=file)
    return results


# -- local pair vs a trio memory channel -------------------------------------------------

CHUNK_SIZE: Final = 64
_CHUNK_BUFFER: Final = (1 << 20) // CHUNK_SIZE  # as many 64-byte chunks as the default window


def _chunks(count: int) -> list[bytes]:
    """Distinct 64-byte objects, made before the clock starts, shared by subject and baseline."""
    return [i.to_bytes(8, "big") * (CHUNK_SIZE // 8) for i in range(count)]


def _throughput(body: Callable[[list[bytes]], Awaitable[None]], size: Size) -> float:
    """Chunks per second for `trio.run(body, chunks)`; the list is built outside the timing."""
    chunks = _chunks(size.items)

    async def timed() -> float:
        start = time.perf_counter()
        await body(chunks)
        return time.perf_counter() - start

    return size.items / trio.run(timed)


async def _memory_channel_body(chunks: list[bytes]) -> None:
    """A producer task sends the chunks into a memory channel, a consumer task takes them."""
    send_channel, receive_channel = trio.open_memory_channel[bytes](_CHUNK_BUFFER)

    async def produce() -> None:
        async with send_channel:
            for chunk in chunks:
                await send_channel.send(chunk)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(produce)
        async with receive_channel:
            async for chunk in receive_channel:
                del chunk


async def _local_pair_body(chunks: list[bytes]) -> None:
    """A bidi raw pair: the client task sends the chunks, the server task receives them."""
    async with open_pair(mode="bidi", encoding="raw") as (client, server):

        async def produce() -> None:
            for chunk in chunks:
                await client.send(chunk)
            await client.close_send()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(produce)
            async for chunk in server:
                del chunk


def memory_channel_chunks(size: Size) -> float:
    """Baseline: chunks/s through a bare trio memory channel, producer task to consumer task."""
    return _throughput(_memory_channel_body, size)


def local_pair_chunks(size: Size) -> float:
    """Subject: chunks/s from a local pair's client to its server, one direction."""
    return _throughput(_local_pair_body, size)


BENCHMARKS: Final[dict[str, Benchmark]] = {
    "local_pair_64b": Benchmark(
        name="local_pair_64b",
        description="local bidi raw pair, 64-byte chunks one way, vs a trio memory channel",
        unit="chunks/s",
        subject=local_pair_chunks,
        baseline_name="trio memory channel",
        baseline=memory_channel_chunks,
        target_ratio=0.5,
        better=Better.HIGHER,
        full=Size(items=100_000, repeats=5),
        quick=Size(items=2_000, repeats=2),
    ),
}
