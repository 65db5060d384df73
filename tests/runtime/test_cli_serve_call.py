"""`streamlet serve` and `streamlet call` end to end, as the subprocesses a user runs.

A small router module is written to a temporary directory and served from
there (MODULE:ROUTER is imported with the current directory on sys.path);
each call mode goes through `streamlet call` with NDJSON on stdin. Every
subprocess wait has a timeout, so nothing can hang the suite.
"""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs
import pytest
import trustme

CLI = [sys.executable, "-m", "streamlet.runtime.cli"]
TIMEOUT = 30  # seconds: a hang guard on every wait, far above what any step takes

APP = """
import trio
import streamlet

router = streamlet.Router()


@router.unary("add")
async def add(request):
    return request["a"] + request["b"]


@router.server_stream("ticks")
async def ticks(request, stream):
    for i in range(request["n"]):
        await stream.send({"i": i, "raw": bytes([i, 255])})


@router.client_stream("total")
async def total(stream):
    return sum([chunk async for chunk in stream])


@router.bidi("echo")
async def echo(stream):
    async for chunk in stream:
        await stream.send(chunk)


@router.bidi("count")
async def count(stream):
    seen = 0
    async for chunk in stream:
        seen += 1
        await stream.send([seen, chunk])
    return {"seen": seen}


@router.bidi("first")
async def first(stream):
    await stream.send(await stream.recv())
    return "enough"


@router.unary("slow")
async def slow(seconds):
    await trio.sleep(seconds)
    return "finished"


@router.unary("refuse")
async def refuse(request):
    raise streamlet.StreamError(streamlet.StatusCode.PERMISSION_DENIED, "not for you")


@router.unary("crash")
async def crash(request):
    raise RuntimeError("the handler broke")


not_a_router = 5
"""

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO streamlet\.streams: ", re.M)


@attrs.define
class Server:
    """A `streamlet serve` subprocess and where it listens."""

    process: subprocess.Popen[bytes]
    banner: str  # its first stdout line: "listening on ADDRESS"
    log_path: Path

    @property
    def address(self) -> str:
        return self.banner.removeprefix("listening on ").split()[0]

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_for_log(self, text: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while text not in self.log():
            assert self.process.poll() is None, f"the server exited:\n{self.log()}"
            assert time.monotonic() < deadline, f"{text!r} never logged:\n{self.log()}"
            time.sleep(0.02)

    def stop(self, signum: int = signal.SIGINT) -> int:
        self.process.send_signal(signum)
        return self.process.wait(TIMEOUT)


def read_line(process: subprocess.Popen[bytes]) -> str:
    """The next stdout line of `process`, or a failure after TIMEOUT (never a hang)."""
    assert process.stdout is not None
    line = b""
    deadline = time.monotonic() + TIMEOUT
    while not line.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        ready, _, _ = select.select([process.stdout], [], [], max(remaining, 0))
        assert ready, f"no line from the server within {TIMEOUT} s (so far {line!r})"
        byte = process.stdout.read(1)
        if not byte:
            break
        line += byte
    return line.decode()


@contextmanager
def serving(directory: Path, *options: str) -> Iterator[Server]:
    """Run `streamlet serve app:router OPTIONS` in `directory` until the block ends."""
    (directory / "app.py").write_text(APP)
    log_path = directory / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*CLI, "serve", "app:router", *options],
            cwd=directory,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            bufsize=0,
        )
        try:
            first = read_line(process)
            assert first.startswith("listening on "), first + log_path.read_text()
            yield Server(process, first.rstrip("\n"), log_path)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(TIMEOUT)
            assert process.stdout is not None
            process.stdout.close()


def call(
    address: str, method: str, mode: str, *options: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "call", address, method, "--mode", mode, *options],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serving(tmp_path_factory.mktemp("serve"), "--tcp", "127.0.0.1:0") as running:
        yield running
        assert running.stop() == 0


# -- each mode through `streamlet call` -------------------------------------------------


def test_serve_prints_the_real_port_it_listens_on(server: Server) -> None:
    host, port = server.address.rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0


def test_unary_prints_the_reply_as_one_json_line(server: Server) -> None:
    done = call(server.address, "add", "unary", "--data", '{"a": 2, "b": 40}')
    assert (done.returncode, done.stdout, done.stderr) == (0, "42\n", "")


def test_server_stream_prints_each_chunk_with_bytes_as_base64(server: Server) -> None:
    done = call(server.address, "ticks", "server_stream", "--data", '{"n": 3}')
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        '{"i": 0, "raw": "AP8="}',
        '{"i": 1, "raw": "Af8="}',
        '{"i": 2, "raw": "Av8="}',
    ]


def test_client_stream_sends_each_stdin_line_and_prints_the_reply(server: Server) -> None:
    done = call(server.address, "total", "client_stream", stdin="1\n2\n\n3.5\n")
    assert (done.returncode, done.stdout) == (0, "6.5\n"), done.stderr


def test_bidi_prints_each_chunk_and_no_reply_when_the_handler_ends(server: Server) -> None:
    done = call(server.address, "echo", "bidi", stdin='"ping"\n{"x": [1, null]}\n')
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ['"ping"', '{"x": [1, null]}']


def test_bidi_prints_the_reply_after_the_chunks_when_the_handler_returns_one(
    server: Server,
) -> None:
    done = call(server.address, "count", "bidi", stdin='"a"\n"b"\n')
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ['[1, "a"]', '[2, "b"]', '{"seen": 2}']


def test_metadata_and_deadline_are_accepted(server: Server) -> None:
    done = call(
        server.address, "add", "unary", "--data", '{"a": 1, "b": 1}',
        "--metadata", "user=ada", "--metadata", "trace=x=y", "--deadline", "10",
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (0, "2\n"), done.stderr


def test_a_call_ends_when_the_server_is_done_even_if_stdin_stays_open(server: Server) -> None:
    process = subprocess.Popen(
        [*CLI, "call", server.address, "first", "--mode", "bidi"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(b'"only this"\n')
        process.stdin.flush()
        assert process.wait(TIMEOUT) == 0  # stdin is still open
        assert process.stdout.read().decode().splitlines() == ['"only this"', '"enough"']
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(TIMEOUT)
        process.stdin.close()
        process.stdout.close()
        assert process.stderr is not None
        process.stderr.close()


def test_a_deadline_ends_a_client_stream_while_stdin_is_quiet(server: Server) -> None:
    process = subprocess.Popen(
        [*CLI, "call", server.address, "total", "--mode", "client_stream", "--deadline", "0.2"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stderr is not None
    try:
        process.stdin.write("1\n")
        process.stdin.flush()
        assert process.wait(TIMEOUT) == 64 + 4
        assert process.stderr.read().startswith("DEADLINE_EXCEEDED: total: deadline of 0.2 s")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(TIMEOUT)
        for pipe in (process.stdin, process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()


# -- failures: the status on stderr, its number as the exit code ------------------------


@pytest.mark.parametrize(
    ("method", "mode", "options", "code", "stderr"),
    [
        ("refuse", "unary", [], 7, "PERMISSION_DENIED: not for you\n"),
        ("nowhere", "unary", [], 5, "NOT_FOUND: no handler for method 'nowhere'\n"),
        ("add", "bidi", [], 12, "UNIMPLEMENTED: method 'add' is served as unary, not bidi\n"),
        ("crash", "unary", [], 13, "INTERNAL: the handler broke\n"),
        ("slow", "unary", ["--data", "60", "--deadline", "0.1"], 4, "DEADLINE_EXCEEDED: "),
    ],
)
def test_a_failed_call_prints_its_status_and_exits_with_its_number(
    server: Server, method: str, mode: str, options: list[str], code: int, stderr: str
) -> None:
    done = call(server.address, method, mode, *options)
    assert done.returncode == 64 + code  # as grpcurl: never mistaken for a usage error
    assert done.stderr.startswith(stderr)
    assert done.stdout == ""


@pytest.mark.parametrize("mode", ["client_stream", "bidi"])
def test_a_stdin_line_that_is_not_json_is_a_usage_error(server: Server, mode: str) -> None:
    method = "total" if mode == "client_stream" else "echo"
    done = call(server.address, method, mode, stdin="1\n{oops\n2\n")
    assert done.returncode == 2
    assert done.stderr.startswith("streamlet call: stdin line 2 is not JSON (")
    assert "Traceback" not in done.stderr


def test_the_server_logs_each_stream_opened_and_ended_with_a_timestamp(server: Server) -> None:
    assert call(server.address, "add", "unary", "--data", '{"a": 0, "b": 0}').returncode == 0
    server.wait_for_log("end: add (unary) OK")
    log = server.log()
    assert LOG_LINE.search(log)
    assert re.search(r"stream \d+ open: add \(unary\)", log)
    assert re.search(r"stream \d+ end: refuse \(unary\) PERMISSION_DENIED 'not for you'", log)


# -- graceful shutdown -------------------------------------------------------------------


def test_sigint_lets_a_stream_in_flight_finish_then_exits_0(tmp_path: Path) -> None:
    with serving(tmp_path, "--tcp", "127.0.0.1:0") as server:
        in_flight = subprocess.Popen(
            [*CLI, "call", server.address, "slow", "--mode", "unary", "--data", "0.5"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        server.wait_for_log("open: slow (unary)")
        server.process.send_signal(signal.SIGINT)
        server.wait_for_log("SIGINT: stopping; BYE to 1 connection(s)")
        late = call(server.address, "add", "unary", "--data", '{"a": 1, "b": 1}')
        out, err = in_flight.communicate(timeout=TIMEOUT)
        assert server.process.wait(TIMEOUT) == 0
    assert (in_flight.returncode, out, err) == (0, '"finished"\n', "")
    assert late.returncode == 64 + 14 and late.stderr.startswith("UNAVAILABLE: ")
    log = server.log()
    assert "end: slow (unary) OK" in log
    assert log.index("SIGINT: stopping") < log.index("end: slow (unary) OK")
    assert "stopped: every connection closed" in log


def test_streams_still_open_after_the_grace_period_end_unavailable(tmp_path: Path) -> None:
    with serving(tmp_path, "--tcp", "127.0.0.1:0", "--grace", "0.2") as server:
        stuck = subprocess.Popen(
            [*CLI, "call", server.address, "slow", "--mode", "unary", "--data", "600"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        server.wait_for_log("open: slow (unary)")
        assert server.stop(signal.SIGTERM) == 0
        _, err = stuck.communicate(timeout=TIMEOUT)
    assert stuck.returncode == 64 + 14 and err.startswith("UNAVAILABLE: ")
    assert "SIGTERM: stopping" in server.log()


def test_a_second_sigint_exits_at_once(tmp_path: Path) -> None:
    with serving(tmp_path, "--tcp", "127.0.0.1:0", "--grace", "600") as server:
        stuck = subprocess.Popen(
            [*CLI, "call", server.address, "slow", "--mode", "unary", "--data", "600"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        server.wait_for_log("open: slow (unary)")
        server.process.send_signal(signal.SIGINT)
        server.wait_for_log("SIGINT: stopping")
        assert server.stop(signal.SIGINT) == 130
        stuck.communicate(timeout=TIMEOUT)
    assert stuck.returncode == 64 + 14
    assert "SIGINT again: exited at once" in server.log()


# -- other transports --------------------------------------------------------------------


def test_serve_and_call_over_a_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    with serving(tmp_path, "--unix", str(path)) as server:
        assert server.address == f"unix:{path}"
        unary = call(server.address, "add", "unary", "--data", '{"a": 20, "b": 22}')
        streamed = call(server.address, "total", "client_stream", stdin="5\n6\n")
        assert server.stop(signal.SIGTERM) == 0
    assert (unary.returncode, unary.stdout) == (0, "42\n"), unary.stderr
    assert (streamed.returncode, streamed.stdout) == (0, "11\n"), streamed.stderr
    assert not path.exists()


def test_serve_and_call_over_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    issued = ca.issue_cert("127.0.0.1")
    issued.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    issued.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    tls = ["--tls-cert", str(tmp_path / "cert.pem"), "--tls-key", str(tmp_path / "key.pem")]
    with serving(tmp_path, "--tcp", "127.0.0.1:0", *tls) as server:
        trusted = call(server.address, "add", "unary", "--data", '{"a": 1, "b": 2}',
                       "--ca", str(tmp_path / "ca.pem"))  # fmt: skip
        untrusted = call(server.address, "add", "unary", "--data", "null", "--tls")
        assert server.stop() == 0
    assert re.fullmatch(r"listening on 127\.0\.0\.1:\d+ \(TLS\)", server.banner)
    assert (trusted.returncode, trusted.stdout) == (0, "3\n"), trusted.stderr
    assert untrusted.returncode == 64 + 14 and "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr


def test_serve_on_an_address_in_use_exits_1(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [*CLI, "serve", "app:router", "--tcp", f"127.0.0.1:{port}"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
    assert done.returncode == 1
    assert done.stderr.endswith(f"cannot listen on 127.0.0.1:{port}: Address already in use\n")


SCRIPT = os.path.join(os.path.dirname(sys.executable), "streamlet")


@pytest.mark.skipif(not os.path.exists(SCRIPT), reason="not installed as a console script here")
def test_the_console_script_runs_the_same_command_line() -> None:
    script = SCRIPT
    done = subprocess.run([script, "call", "--help"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0
    assert "exit status" in done.stdout
