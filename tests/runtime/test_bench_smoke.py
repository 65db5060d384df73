"""The benchmark harness in quick mode: it runs, and its records are well formed (no timings)."""

from __future__ import annotations

import importlib.util
import io
import json

import pytest
from streamlet.runtime import bench_grpc
from streamlet.runtime.bench import (
    BENCHMARKS,
    Benchmark,
    Better,
    Result,
    Sample,
    Size,
    Skip,
    Target,
    format_result,
    measure,
    run_benchmarks,
)

GRPC_INSTALLED = importlib.util.find_spec("grpc") is not None


def _check(result: Result) -> None:
    assert result.name in BENCHMARKS
    assert result.unit and result.baseline_name
    if result.skipped is not None:
        assert result.skipped and result.met is None
        return
    assert result.figure > 0 and result.baseline_figure > 0
    assert result.ratio == pytest.approx(result.figure / result.baseline_figure)
    assert result.runs >= 1
    checks = []
    if result.target_ratio is not None:
        checks.append(
            result.ratio >= result.target_ratio
            if result.better is Better.HIGHER
            else result.ratio <= result.target_ratio
        )
    if result.target_figure is not None:
        checks.append(
            result.figure >= result.target_figure
            if result.better is Better.HIGHER
            else result.figure <= result.target_figure
        )
    assert result.met == (all(checks) if checks else None)
    for other in result.others:
        assert other.name and other.unit
        assert other.value > 0 and other.baseline_value > 0
        assert other.ratio == pytest.approx(other.value / other.baseline_value)


def test_quick_run_of_every_benchmark_prints_each_well_formed_result() -> None:
    out = io.StringIO()
    results = run_benchmarks(None, quick=True, json=False, file=out)
    assert [r.name for r in results] == list(BENCHMARKS)
    for result in results:
        _check(result)
        assert (result.skipped is None) == (GRPC_INSTALLED or not result.name.startswith("grpc"))
    assert out.getvalue() == "".join(format_result(r) + "\n" for r in results)


def test_every_tcp_case_names_its_settings_and_every_target_its_limit() -> None:
    for benchmark in BENCHMARKS.values():
        if benchmark.name.startswith(("tcp", "grpc")):
            assert benchmark.settings
        if benchmark.target != Target():
            assert benchmark.limit


def test_the_latency_case_carries_its_p99_and_rate_beside_the_baseline() -> None:
    (result,) = run_benchmarks(["tcp_ping_pong"], quick=True, json=True, file=io.StringIO())
    _check(result)
    assert [other.name for other in result.others] == ["p99", "rate"]
    assert "    p99: " in format_result(result)


def test_json_output_is_the_list_of_records() -> None:
    out = io.StringIO()
    results = run_benchmarks(
        ["local_pair_64b", "tcp_idle_streams"], quick=True, json=True, file=out
    )
    assert len(results) == 2
    for result in results:
        _check(result)
    assert json.loads(out.getvalue()) == [r.to_json() for r in results]


def test_an_unknown_benchmark_is_refused_before_anything_runs() -> None:
    out = io.StringIO()
    with pytest.raises(ValueError, match="no_such_bench"):
        run_benchmarks(["local_pair_64b", "no_such_bench"], quick=True, json=False, file=out)
    assert out.getvalue() == ""


def _never(size: Size) -> Sample:
    raise AssertionError("a skipped benchmark must not run")


def _missing() -> None:
    raise Skip("frobnitz not installed")


def test_a_benchmark_whose_check_skips_is_reported_skipped_not_run() -> None:
    benchmark = Benchmark(
        name="needs_frobnitz",
        description="",
        unit="x/s",
        subject=_never,
        baseline_name="frobnitz",
        baseline=_never,
        target=Target(),
        better=Better.HIGHER,
        full=Size(1, 1),
        quick=Size(1, 1),
        check=_missing,
    )
    result = measure(benchmark, quick=True)
    assert result.skipped == "frobnitz not installed" and result.met is None
    assert format_result(result) == "needs_frobnitz: skipped: frobnitz not installed"
    assert json.loads(json.dumps(result.to_json()))["skipped"] == "frobnitz not installed"


def test_without_grpcio_the_grpc_benchmarks_say_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bench_grpc.importlib.util, "find_spec", lambda name: None)
    out = io.StringIO()
    results = run_benchmarks(
        ["grpc_server_stream_64b", "grpc_ping_pong"], quick=True, json=False, file=out
    )
    assert [r.skipped for r in results] == [bench_grpc.NOT_INSTALLED] * 2
    assert out.getvalue().splitlines() == [
        "grpc_server_stream_64b: skipped: grpcio not installed (pip install 'streamlet[bench]')",
        "grpc_ping_pong: skipped: grpcio not installed (pip install 'streamlet[bench]')",
    ]
