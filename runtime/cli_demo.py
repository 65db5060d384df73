"""`streamlet demo`: the tour and the large transfer against an embedded server, with progress.

By default the demo router is served on loopback TCP (127.0.0.1, a free port)
in the same run and every step crosses that real connection; `--local` runs
the same steps in-process (`open_local`, no socket). The transfer shows a
progress bar: one line redrawn in place on a terminal, a few plain lines
otherwise (a pipe or a log file).
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from typing import Final, TextIO

import trio
from streamlet.codec.status import StreamError

from .carrier_errors import CarrierError
from .demo import MIB, DemoFailed, Opener, demo_router, run_tour, run_transfer
from .endpoints import ConnectionSet, connect_tcp, serve_tcp
from .local import open_local
from .settings import ConnectionSettings

DEFAULT_SIZE_MIB: Final = 256
# As over the local pair: a 2 MiB window, whose half-window max chunk admits the 1 MiB chunks.
BULK: Final = ConnectionSettings(initial_window=2 * MIB, max_chunk_size=MIB)
REDRAW_INTERVAL: Final = 0.1  # seconds between redraws of the terminal bar: ~10 per second
PLAIN_STEPS: Final = 4  # lines a non-terminal prints: at 25, 50, 75 and 100 %
BAR_WIDTH: Final = 30


class ProgressBar:
    """How much of a transfer is done, and how fast.

    On a terminal, one line redrawn with a carriage return at most every
    `REDRAW_INTERVAL` seconds (and once at the end); elsewhere, a plain line at
    each quarter, so a log stays short.
    """

    def __init__(self, total: int, file: TextIO, *, tty: bool | None = None) -> None:
        if total < 1:
            raise ValueError(f"a progress bar needs a total of at least 1, got {total}")
        self.total = total
        self.file = file
        self.tty = file.isatty() if tty is None else tty
        self._started = time.monotonic()
        self._last_draw = -float("inf")
        self._next_step = 1  # the quarter a plain line is due at

    def update(self, done: int) -> None:
        """Record `done` bytes of `total`; draws if it is time to."""
        now = time.monotonic()
        if self.tty:
            if done >= self.total or now - self._last_draw >= REDRAW_INTERVAL:
                self._last_draw = now
                filled = BAR_WIDTH * done // self.total
                bar = "#" * filled + "." * (BAR_WIDTH - filled)
                self.file.write(f"\r  [{bar}] {self._figures(done, now)}")
                if done >= self.total:
                    self.file.write("\n")
                self.file.flush()
            return
        while self._next_step <= PLAIN_STEPS and done * PLAIN_STEPS >= self._next_step * self.total:
            self._next_step += 1
            self.file.write(f"  progress {self._figures(done, now)}\n")
            self.file.flush()

    def _figures(self, done: int, now: float) -> str:
        elapsed = now - self._started
        rate = f"{done / MIB / elapsed:6.0f} MiB/s" if elapsed > 0 else "     - MiB/s"
        percent = 100 * done // self.total
        return f"{percent:3d}% {done // MIB:>5}/{self.total // MIB} MiB {rate}"


def run_demo(*, local: bool, size_mib: int, out: TextIO | None = None) -> int:
    """Run the demo, printing each step to `out` (stdout); returns the exit code.

    0: every step behaved as expected; 1: one did not (the reason on stderr).
    """
    stream = sys.stdout if out is None else out

    def say(line: str) -> None:
        print(line, file=stream, flush=True)

    started = time.monotonic()
    runner = _demo_local if local else _demo_tcp
    try:
        trio.run(runner, size_mib, say, stream)
    except DemoFailed as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    say(f"demo passed in {time.monotonic() - started:.1f} s")
    return 0


async def _demo_local(size_mib: int, say: Callable[[str], None], out: TextIO) -> None:
    say("streamlet demo: each call mode against a demo router, in-process (no socket)")
    # The default max chunk is half the window: 2 MiB lets the upload's 1 MiB chunks through.
    opener = functools.partial(open_local, demo_router, window=2 * MIB)
    await _steps(opener, size_mib, say, out)


async def _demo_tcp(size_mib: int, say: Callable[[str], None], out: TextIO) -> None:
    connections = ConnectionSet()
    serve = functools.partial(
        serve_tcp, demo_router, 0, host="127.0.0.1", connections=connections, settings=BULK
    )
    failure: DemoFailed | None = None
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(serve)
        port = listeners[0].socket.getsockname()[1]
        say(f"streamlet demo: a demo server on 127.0.0.1:{port}, each call mode over TCP")
        try:
            async with connect_tcp("127.0.0.1", port, settings=BULK) as peer:
                await _steps(peer.open_stream, size_mib, say, out)
        except DemoFailed as exc:
            failure = exc
        except (StreamError, CarrierError, OSError) as exc:
            failure = DemoFailed(f"the connection to the demo server failed: {exc}")
        finally:
            await connections.shutdown("the demo is over", grace=1)
    if failure is not None:
        raise failure


async def _steps(
    open_stream: Opener, size_mib: int, say: Callable[[str], None], out: TextIO
) -> None:
    try:
        await run_tour(open_stream, say)
        bar = ProgressBar(size_mib * MIB, out)
        await run_transfer(open_stream, size_mib, say, bar.update)
    except StreamError as exc:
        raise DemoFailed(f"a step failed unexpectedly: {exc}") from exc
