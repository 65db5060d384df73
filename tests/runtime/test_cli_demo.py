"""The `streamlet demo` command: the README's main job."""

from __future__ import annotations

import pytest
from streamlet.runtime import cli
from streamlet.runtime.demo import DemoFailed


def test_demo_passes_and_prints_every_mode(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo"]) == 0
    out = capsys.readouterr().out
    for line in ("reply 42", "chunk {'i': 2}", "reply 55", "CANCELLED", "DEADLINE_EXCEEDED"):
        assert line in out
    assert out.rstrip().endswith("demo passed")


def test_demo_exits_nonzero_when_a_step_misbehaves(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def broken_tour(*args: object) -> None:
        raise DemoFailed("add: expected 42, got 41")

    monkeypatch.setattr(cli, "run_tour", broken_tour)
    assert cli.main(["demo"]) == 1
    assert "demo failed: add: expected 42, got 41" in capsys.readouterr().err
