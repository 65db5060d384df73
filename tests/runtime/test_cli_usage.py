"""The command line's usage errors, help texts and value printing, in-process.

Every bad input gets one clear line on stderr and exit code 2 (argparse's own
convention), never a traceback; a server that cannot be reached is
UNAVAILABLE, exit code 64 + 14.
"""

from __future__ import annotations

import datetime
import math
import os
import socket
import sys
from pathlib import Path

import cbor2
import pytest
from streamlet.runtime import cli
from streamlet.runtime.cli_call import read_ndjson, to_json
from streamlet.runtime.cli_common import UsageError, parse_call_address, parse_tcp_address
from streamlet.runtime.cli_serve import load_router
from streamlet.runtime.router import Router

APP = """
import streamlet

router = streamlet.Router()
admin = streamlet.Router()
not_a_router = 5
"""


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory holding `cli_usage_app.py`, as the current directory; sys.path restored."""
    (tmp_path / "cli_usage_app.py").write_text(APP)
    (tmp_path / "cli_usage_broken.py").write_text("raise RuntimeError('import-time failure')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in ("cli_usage_app", "cli_usage_broken"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return tmp_path


def test_load_router_imports_the_module_from_the_current_directory(app_dir: Path) -> None:
    assert isinstance(load_router("cli_usage_app:router"), Router)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("cli_usage_app", "expected MODULE:ROUTER, e.g. myapp.handlers:router"),
        ("cli_usage_app:", "expected MODULE:ROUTER"),
        ("no_such_module_here:router", "no module named 'no_such_module_here' (looked in "),
        ("cli_usage_app:missing", "has no attribute 'missing'; its Routers: admin, router"),
        ("cli_usage_app:not_a_router", "is of type int, not a streamlet.Router"),
        ("cli_usage_broken:router", "raised RuntimeError: import-time failure"),
    ],
)
def test_serve_with_a_bad_module_router_exits_2_with_the_reason(
    app_dir: Path, spec: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["serve", spec, "--tcp", "127.0.0.1:0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("streamlet serve: ")
    assert message in err


def test_an_import_failure_shows_the_user_code_not_the_import_machinery(app_dir: Path) -> None:
    with pytest.raises(UsageError) as failed:
        load_router("cli_usage_broken:router")
    text = str(failed.value)
    assert 'cli_usage_broken.py", line 1' in text
    assert "importlib" not in text


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--tcp", "127.0.0.1"], "--tcp must be HOST:PORT"),
        (["--tcp", "127.0.0.1:99999"], "the port must be a number from 0 to 65535"),
        (["--tcp", "::1:80"], "put an IPv6 host in brackets"),
        (["--tcp", "127.0.0.1:0", "--tls-cert", "c.pem"], "--tls-cert and --tls-key go together"),
        (["--tcp", "127.0.0.1:0", "--tls-cert", "c.pem", "--tls-key", "k.pem"], "cannot read"),
        (["--tcp", "127.0.0.1:0", "--grace", "-1"], "--grace must be >= 0 seconds"),
    ],
)
def test_serve_with_bad_options_exits_2(
    app_dir: Path, options: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["serve", "cli_usage_app:router", *options]) == 2
    assert message in capsys.readouterr().err


def test_serve_needs_exactly_one_of_tcp_and_unix(capsys: pytest.CaptureFixture[str]) -> None:
    for options in ([], ["--tcp", "127.0.0.1:0", "--unix", "/tmp/x.sock"]):
        with pytest.raises(SystemExit) as exited:
            cli.main(["serve", "app:router", *options])
        assert exited.value.code == 2
    assert "--tcp" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["127.0.0.1", "m", "--mode", "unary"], "ADDRESS must be HOST:PORT"),
        ([":80", "m", "--mode", "unary"], "ADDRESS needs a host"),
        (["127.0.0.1:0", "m", "--mode", "unary"], "ADDRESS needs the server's port"),
        (["unix:", "m", "--mode", "unary"], "unix:PATH needs a path"),
        (["h:1", "m", "--mode", "unary", "--data", "{nope"], "--data is not JSON"),
        (["h:1", "m", "--mode", "bidi", "--data", "1"], "--data is the request of a unary"),
        (["h:1", "m", "--mode", "unary", "--metadata", "novalue"], "takes KEY=VALUE"),
        (["h:1", "m", "--mode", "unary", "--deadline", "0"], "--deadline must be"),
        (["h:1", "m", "--mode", "unary", "--server-name", "x"], "--server-name is for TLS"),
        (["unix:/x", "m", "--mode", "unary", "--tls"], "a Unix socket has no TLS"),
        (["h:1", "m", "--mode", "unary", "--ca", "/no/such.pem"], "not a readable PEM CA"),
    ],
)
def test_call_with_bad_arguments_exits_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["call", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("streamlet call: ") and message in err


def test_call_with_an_unknown_mode_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["call", "127.0.0.1:1", "m", "--mode", "sideways"])
    assert exited.value.code == 2
    assert "invalid choice: 'sideways'" in capsys.readouterr().err


def test_call_to_a_server_that_is_not_there_is_unavailable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        code = cli.main(["call", f"127.0.0.1:{port}", "add", "--mode", "unary"])
    assert code == 64 + 14
    err = capsys.readouterr().err
    assert err.startswith(f"UNAVAILABLE: cannot connect to 127.0.0.1:{port}: ")
    assert "refused" in err


@pytest.mark.parametrize("command", ["demo", "serve", "call", "bench"])
def test_every_command_has_help_with_exit_status_and_examples(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main([command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "exit status:" in out and "examples:" in out
    assert f"streamlet {command}" in out


def test_call_help_lists_every_status_number(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["call", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "65 CANCELLED" in out and "80 UNAUTHENTICATED" in out  # 64 + the status number
    assert "base64" in out


def test_bench_with_an_unknown_name_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bench", "--quick", "no_such_benchmark"]) == 2
    assert "unknown benchmark" in capsys.readouterr().err


def test_addresses_parse_as_documented() -> None:
    assert str(parse_tcp_address("[::1]:8000", what="--tcp")) == "[::1]:8000"
    assert parse_tcp_address(":8000", what="--tcp").host == ""
    assert str(parse_call_address("unix:/run/app.sock")) == "unix:/run/app.sock"
    assert parse_call_address("example.org:443").port == 443


def test_values_json_cannot_hold_print_as_text() -> None:
    value = {
        b"\x00": [b"\xff", math.nan, datetime.date(2024, 1, 2)],
        7: {1, 2},
        "tag": cbor2.CBORTag(1234, b"x"),
    }
    assert to_json(value) == {
        "AA==": ["/w==", "nan", "2024-01-02"],
        "7": [1, 2],
        "tag": {"tag": 1234, "value": "eA=="},
    }


async def test_stdin_lines_are_yielded_as_they_arrive_with_their_line_numbers() -> None:
    read_end, write_end = os.pipe()
    try:
        lines = read_ndjson(read_end)
        os.write(write_end, b'1\n{"a"')
        assert await lines.__anext__() == (1, 1)
        os.write(write_end, b': 2}\n\n  \n"last, no newline"')
        assert await lines.__anext__() == (2, {"a": 2})
        os.close(write_end)
        assert await lines.__anext__() == (5, "last, no newline")
        with pytest.raises(StopAsyncIteration):
            await lines.__anext__()
    finally:
        os.close(read_end)
