"""The `streamlet` command line."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence

import trio

from .demo import DemoFailed, demo_router, run_tour
from .local import open_local


def _say(line: str) -> None:
    print(line, flush=True)


async def _demo() -> None:
    opener = functools.partial(open_local, demo_router)
    _say("streamlet demo: the four call modes against a demo router, in-process")
    await run_tour(opener, _say)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = argparse.ArgumentParser(
        prog="streamlet", description="An actor-based stream runtime for trio."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "demo",
        help="run each call mode against a demo router and check the outcomes",
        description="Run unary, server_stream, client_stream and bidi calls, an abort and a "
        "deadline against a demo router, printing each step; exit 0 only if all behaved.",
    )
    args = parser.parse_args(argv)
    if args.command == "demo":
        try:
            trio.run(_demo)
        except DemoFailed as exc:
            print(f"demo failed: {exc}", file=sys.stderr)
            return 1
        _say("demo passed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
