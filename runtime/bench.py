"""Benchmarks, each figure beside a baseline measured in the same run.

The machines this runs on are shared and noisy, so an absolute figure says
little: every benchmark times its subject (streamlet) and a baseline (the bare
trio or socket equivalent, or grpcio) on the same objects, interleaving their
runs so a noisy moment hits both, keeps the best run of each, and reports the
ratio against a target. `run_benchmarks` runs them and prints the results;
`streamlet bench [--json] [--quick]` is a thin wrapper around it.

This module is the harness and the registry. The records live in
`bench_model`, the cases in `bench_cases` (in-process and loopback TCP),
`bench_idle` (many idle streams) and `bench_grpc` (the same workloads
through grpcio, when it is installed).

Adding one: write two `Measure` functions (a sync callable that takes the
`Size` and returns a `Sample`, usually by `trio.run` of an async body) and
register a `Benchmark` in `BENCHMARKS`.
"""

from __future__ import annotations

import json as json_module
import sys
from collections.abc import Sequence
from typing import Final, TextIO

from . import bench_cases, bench_grpc, bench_idle
from .bench_model import (
    Benchmark,
    Better,
    Figure,
    Measure,
    Reading,
    Result,
    Sample,
    Size,
    Skip,
    Target,
)

__all__ = [
    "BENCHMARKS",
    "Benchmark",
    "Better",
    "Figure",
    "Measure",
    "Reading",
    "Result",
    "Sample",
    "Size",
    "Skip",
    "Target",
    "format_result",
    "measure",
    "print_results",
    "run_benchmarks",
]


def _is_better(better: Better, value: float, bound: float) -> bool:
    """Whether `value` reaches `bound` in the direction that counts as better."""
    return value >= bound if better is Better.HIGHER else value <= bound


def _skipped(benchmark: Benchmark, reason: str) -> Result:
    return Result(
        name=benchmark.name,
        figure=0.0,
        unit=benchmark.unit,
        baseline_name=benchmark.baseline_name,
        baseline_figure=0.0,
        ratio=0.0,
        target_ratio=benchmark.target.ratio,
        target_figure=benchmark.target.figure,
        better=benchmark.better,
        met=None,
        runs=0,
        settings=benchmark.settings,
        skipped=reason,
    )


def _others(subject: Sample, baseline: Sample) -> tuple[Figure, ...]:
    """The subject's secondary readings beside the baseline's readings of the same name."""
    by_name = {reading.name: reading for reading in baseline.readings}
    figures = []
    for reading in subject.readings:
        match = by_name.get(reading.name)
        if match is None or match.value <= 0 or reading.value <= 0:
            raise RuntimeError(f"reading {reading.name!r} has no positive baseline to compare")
        figures.append(
            Figure(
                reading.name,
                reading.value,
                reading.unit,
                match.value,
                reading.value / match.value,
                reading.better,
            )
        )
    return tuple(figures)


def measure(benchmark: Benchmark, *, quick: bool) -> Result:
    """Run the subject and baseline alternately, keep each one's best run, compare them.

    The order flips every round so neither side always runs first (warm caches,
    a garbage collection left over from the other side). A benchmark whose
    `check` raises `Skip` is not run: its result says why.
    """
    try:
        benchmark.check()
    except Skip as exc:
        return _skipped(benchmark, str(exc))
    size = benchmark.quick if quick else benchmark.full
    subjects: list[Sample] = []
    baselines: list[Sample] = []
    for round_ in range(size.repeats):
        if round_ % 2:
            subjects.append(benchmark.subject(size))
            baselines.append(benchmark.baseline(size))
        else:
            baselines.append(benchmark.baseline(size))
            subjects.append(benchmark.subject(size))
    pick = max if benchmark.better is Better.HIGHER else min
    subject = pick(subjects, key=lambda sample: sample.value)
    baseline = pick(baselines, key=lambda sample: sample.value)
    figure, baseline_figure = subject.value, baseline.value
    if figure <= 0 or baseline_figure <= 0:
        raise RuntimeError(f"benchmark {benchmark.name} measured a non-positive figure")
    ratio = figure / baseline_figure
    target = benchmark.target
    checks = []
    if target.ratio is not None:
        checks.append(_is_better(benchmark.better, ratio, target.ratio))
    if target.figure is not None:
        checks.append(_is_better(benchmark.better, figure, target.figure))
    return Result(
        name=benchmark.name,
        figure=figure,
        unit=benchmark.unit,
        baseline_name=benchmark.baseline_name,
        baseline_figure=baseline_figure,
        ratio=ratio,
        target_ratio=target.ratio,
        target_figure=target.figure,
        better=benchmark.better,
        met=all(checks) if checks else None,
        runs=size.repeats,
        others=_others(subject, baseline),
        limit=benchmark.limit,
        settings=benchmark.settings,
    )


def _number(value: float) -> str:
    """A figure for people: whole numbers with separators, one decimal below 100."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"


def _target(result: Result) -> str:
    sign = ">=" if result.better is Better.HIGHER else "<="
    bounds = []
    if result.target_ratio is not None:
        bounds.append(f"ratio {sign} {result.target_ratio:.2f}")
    if result.target_figure is not None:
        bounds.append(f"{sign} {_number(result.target_figure)} {result.unit}")
    if not bounds:
        return "no target"
    missed = "NOT met" + (f": {result.limit}" if result.limit else "")
    verdict = "met" if result.met else missed
    return f"target {' and '.join(bounds)}, {verdict}"


def format_result(result: Result) -> str:
    """The figure, the baseline's, the ratio against its target, whether it is met.

    One line, then an indented line per secondary figure and one for the
    settings the benchmark ran with, if it names any. A skipped benchmark is
    one line saying why.
    """
    if result.skipped is not None:
        return f"{result.name}: skipped: {result.skipped}"
    lines = [
        f"{result.name}: {_number(result.figure)} {result.unit} vs {result.baseline_name} "
        f"{_number(result.baseline_figure)} {result.unit}: ratio {result.ratio:.2f} "
        f"({_target(result)}; best of {result.runs})"
    ]
    for other in result.others:
        lines.append(
            f"    {other.name}: {_number(other.value)} {other.unit} vs "
            f"{_number(other.baseline_value)} {other.unit}: ratio {other.ratio:.2f}"
        )
    if result.settings:
        lines.append(f"    settings: {result.settings}")
    return "\n".join(lines)


def print_results(results: Sequence[Result], *, json: bool, file: TextIO | None = None) -> None:
    """Print the results as text, or as one JSON document (a list of records)."""
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


BENCHMARKS: Final[dict[str, Benchmark]] = {
    benchmark.name: benchmark
    for benchmark in (*bench_cases.CASES, *bench_idle.CASES, *bench_grpc.CASES)
}
