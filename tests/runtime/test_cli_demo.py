"""The `streamlet demo` command: the README's main job, over TCP and in-process."""

from __future__ import annotations

import hashlib
import io
import re
from functools import partial
from typing import Any

import pytest
from streamlet.runtime import cli, cli_demo
from streamlet.runtime.demo import MIB, DemoFailed, run_transfer
from streamlet.runtime.local import open_local
from streamlet.runtime.router import Router

STEPS = (
    "reply 42",
    "chunk {'i': 2}",
    "reply 55",
    "after abort: CANCELLED",
    "DEADLINE_EXCEEDED",
    "client_stream upload: 8 MiB in 1 MiB raw chunks",
    "server received 8,388,608 B",
    "digests match; 8 MiB in",
)


def test_demo_runs_every_step_over_a_real_tcp_connection(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["demo", "--size", "8"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"a demo server on 127\.0\.0\.1:\d+, each call mode over TCP", out)
    for line in STEPS:
        assert line in out
    assert re.search(r"digests match; 8 MiB in [\d.]+ s: \d+ MiB/s", out)
    assert out.rstrip().splitlines()[-1].startswith("demo passed in ")


def test_demo_local_runs_the_same_steps_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "--local", "--size", "8"]) == 0
    out = capsys.readouterr().out
    assert "in-process (no socket)" in out
    for line in STEPS:
        assert line in out
    assert out.rstrip().splitlines()[-1].startswith("demo passed in ")


def test_demo_prints_plain_progress_lines_when_stdout_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["demo", "--local", "--size", "8"]) == 0
    progress = [line for line in capsys.readouterr().out.splitlines() if "progress" in line]
    assert [line.split()[1] for line in progress] == ["25%", "50%", "75%", "100%"]
    assert "\r" not in "".join(progress)


@pytest.mark.parametrize("local", [False, True])
def test_demo_exits_nonzero_when_a_step_misbehaves(
    local: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def broken_tour(*args: object) -> None:
        raise DemoFailed("add: expected 42, got 41")

    monkeypatch.setattr(cli_demo, "run_tour", broken_tour)
    argv = ["demo", "--size", "1"] + (["--local"] if local else [])
    assert cli.main(argv) == 1
    assert "demo failed: add: expected 42, got 41" in capsys.readouterr().err


def lying_router(size_error: int, digest: bytes | None) -> Router:
    """An upload handler that misreports what it received."""
    router = Router()

    @router.client_stream("upload")
    async def upload(stream: Any) -> bytes:
        size, real = 0, hashlib.sha256()
        async for chunk in stream:
            size += len(chunk)
            real.update(chunk)
        return (size + size_error).to_bytes(8, "big") + (digest or real.digest())

    return router


@pytest.mark.parametrize(
    ("size_error", "digest", "complaint"),
    [(0, bytes(32), "SHA-256: expected"), (-1, None, "bytes received: expected 2097152")],
)
async def test_the_transfer_fails_when_the_server_reports_other_bytes(
    size_error: int, digest: bytes | None, complaint: str
) -> None:
    opener = partial(open_local, lying_router(size_error, digest), window=2 * MIB)
    with pytest.raises(DemoFailed, match=complaint):
        await run_transfer(opener, 2, lambda line: None, lambda done: None)


@pytest.mark.parametrize("size", ["0", "-3", "1.5", "lots"])
def test_demo_refuses_a_bad_size(size: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["demo", "--size", size])
    assert exited.value.code == 2
    assert "--size" in capsys.readouterr().err


def test_progress_bar_on_a_terminal_redraws_one_line() -> None:
    out = io.StringIO()
    bar = cli_demo.ProgressBar(4 * MIB, out, tty=True)
    for done in range(1, 5):
        bar.update(done * MIB)
    frames = out.getvalue().split("\r")
    assert frames[0] == ""  # every frame starts with a carriage return
    assert frames[1].startswith("  [" + "#" * 7 + "." * 23 + "]  25%     1/4 MiB")
    assert frames[-1].startswith("  [" + "#" * 30 + "] 100%     4/4 MiB")
    assert frames[-1].endswith(" MiB/s\n")  # the line ends once, at 100 %
    assert "\n" not in "".join(frames[:-1])
    assert len(frames) - 1 <= 4  # updates closer than the redraw interval are skipped


def test_progress_bar_refuses_an_empty_total() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        cli_demo.ProgressBar(0, io.StringIO())
