"""The benchmark records: what a benchmark is, what one run of it measures, what it reports.

These are plain values shared by the harness (`bench`) and the benchmark
cases (`bench_cases`, `bench_grpc`), kept apart so the cases can build
`Benchmark`s without importing the harness that registers them.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

import attrs


class Better(enum.Enum):
    """Which way a figure improves: throughput goes up, latency and memory go down."""

    HIGHER = "higher"
    LOWER = "lower"


@attrs.frozen
class Size:
    """How much work one measurement does: the full run, or a quick one for smoke tests."""

    items: int  # chunks, round trips or streams, as the benchmark counts them
    repeats: int  # interleaved (baseline, subject) runs; the best of each is kept


@attrs.frozen
class Reading:
    """A secondary figure one run measured beside its main one (a p99, a rate, a time)."""

    name: str
    value: float
    unit: str
    better: Better


@attrs.frozen
class Sample:
    """What one run of a subject or a baseline measured: the main figure, and any others.

    The harness keeps the run with the best main figure, and reports the other
    readings of that same run (so a p50 and its p99 come from one run).
    """

    value: float
    readings: tuple[Reading, ...] = ()


Measure = Callable[[Size], Sample]


class Skip(Exception):
    """Raised by a `Benchmark.check` (or a measure) when the benchmark cannot run here."""


@attrs.frozen
class Target:
    """What a benchmark should reach; a bound left None is not checked.

    `ratio` bounds subject / baseline; `figure` bounds the subject's own main
    figure, in its unit (for a target stated absolutely, such as bytes per stream).
    With neither, the benchmark is a comparison with no target.
    """

    ratio: float | None = None
    figure: float | None = None


def _always_available() -> None:
    """The default `Benchmark.check`: nothing optional is needed."""


@attrs.frozen
class Benchmark:
    """A subject and its baseline, measured in the same unit, and what the subject should reach.

    `limit` says, in one short phrase, what limits the subject's figure; it is
    printed when a target is missed. `settings` names the connection settings
    it runs with, printed with the result: they are part of the benchmark.
    `check` raises `Skip` when something the benchmark needs is missing (an
    optional package), before anything runs.
    """

    name: str
    description: str
    unit: str
    subject: Measure
    baseline_name: str
    baseline: Measure
    target: Target
    better: Better
    full: Size
    quick: Size
    limit: str = ""
    settings: str = ""  # the connection settings it runs with, printed with its result
    check: Callable[[], None] = _always_available


@attrs.frozen
class Figure:
    """A secondary reading of the subject beside the same reading of the baseline."""

    name: str
    value: float
    unit: str
    baseline_value: float
    ratio: float  # value / baseline_value
    better: Better

    def to_json(self) -> dict[str, object]:
        """The figure as plain JSON values."""
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "baseline_value": self.baseline_value,
            "ratio": self.ratio,
            "better": self.better.value,
        }


@attrs.frozen
class Result:
    """One benchmark's figures: the subject, its same-run baseline, their ratio and the target.

    A skipped benchmark (`skipped` says why) has zero figures and `met` None;
    so has `met` a benchmark with no target.
    """

    name: str
    figure: float
    unit: str
    baseline_name: str
    baseline_figure: float
    ratio: float  # figure / baseline_figure
    target_ratio: float | None
    better: Better
    met: bool | None
    runs: int  # how many runs of each side the figures are the best of
    target_figure: float | None = None
    others: tuple[Figure, ...] = ()
    limit: str = ""  # what limits the figure; printed when the target is missed
    settings: str = ""  # the connection settings it ran with, if any
    skipped: str | None = None

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
            "target_figure": self.target_figure,
            "better": self.better.value,
            "met": self.met,
            "runs": self.runs,
            "others": [figure.to_json() for figure in self.others],
            "limit": self.limit,
            "settings": self.settings,
            "skipped": self.skipped,
        }
