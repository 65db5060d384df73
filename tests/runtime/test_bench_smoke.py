"""The benchmark harness in quick mode: it runs, and its records are well formed (no timings)."""

from __future__ import annotations

import io
import json

import pytest
from streamlet.runtime.bench import BENCHMARKS, Better, Result, format_result, run_benchmarks


def _check(result: Result) -> None:
    assert result.name in BENCHMARKS
    assert result.figure > 0 and result.baseline_figure > 0
    assert result.ratio == pytest.approx(result.figure / result.baseline_figure)
    assert result.unit and result.baseline_name
    assert result.runs >= 1
    if result.better is Better.HIGHER:
        assert result.met == (result.ratio >= result.target_ratio)
    else:
        assert result.met == (result.ratio <= result.target_ratio)


def test_quick_run_of_every_benchmark_prints_a_line_per_well_formed_result() -> None:
    out = io.StringIO()
    results = run_benchmarks(None, quick=True, json=False, file=out)
    assert [r.name for r in results] == list(BENCHMARKS)
    for result in results:
        _check(result)
    assert out.getvalue().splitlines() == [format_result(r) for r in results]


def test_json_output_is_the_list_of_records() -> None:
    out = io.StringIO()
    results = run_benchmarks(["local_pair_64b"], quick=True, json=True, file=out)
    assert len(results) == 1
    _check(results[0])
    assert json.loads(out.getvalue()) == [results[0].to_json()]


def test_an_unknown_benchmark_is_refused_before_anything_runs() -> None:
    out = io.StringIO()
    with pytest.raises(ValueError, match="no_such_bench"):
        run_benchmarks(["local_pair_64b", "no_such_bench"], quick=True, json=False, file=out)
    assert out.getvalue() == ""
