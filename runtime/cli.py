"""The `streamlet` command line: demo, serve, call and bench.

This module holds the argument parser (every command's `--help`) and hands
each command to its own module: `cli_demo`, `cli_serve`, `cli_call`, and
`bench` for the benchmarks.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from streamlet.codec.modes import Mode
from streamlet.codec.status import StatusCode

from .bench import BENCHMARKS, run_benchmarks
from .cli_call import build_request, run_call
from .cli_common import (
    STATUS_EXIT_BASE,
    USAGE_EXIT,
    UsageError,
    parse_call_address,
    parse_tcp_address,
)
from .cli_demo import DEFAULT_SIZE_MIB, run_demo
from .cli_serve import DEFAULT_GRACE, run_serve


def _status_list(indent: int = 7, width: int = 78) -> str:
    """Every non-OK status as `N NAME`, wrapped between entries, for the help text."""
    lines, line = [], ""
    for code in StatusCode:
        if code is StatusCode.OK:
            continue
        entry = f"{STATUS_EXIT_BASE + code.value} {code.name},"
        if line and indent + len(line) + 1 + len(entry) > width:
            lines.append(line)
            line = entry
        else:
            line = f"{line} {entry}" if line else entry
    lines.append(line.rstrip(",") + ".")
    return "\n".join(" " * indent + text for text in lines)


_STATUS_LIST = _status_list()

DEMO_HELP = """\
Start a demo server on loopback TCP (127.0.0.1, a free port) in this process
and run, over a real connection: a unary call, a server_stream, a
client_stream, a bidi call aborted mid-stream, a unary call that passes its
deadline, and a large upload (--size MiB in 1 MiB raw chunks, SHA-256 on both
ends, with a progress bar and the throughput). Each step prints what it sends
and receives and is checked against what it should do.

exit status:
  0  every step behaved as expected
  1  a step did not (the reason is on stderr)
  2  usage error

examples:
  streamlet demo
  streamlet demo --local --size 64
"""

SERVE_HELP = """\
Import MODULE (the current directory first on the module path, as with
`python -m`), take its streamlet.Router named ROUTER, and serve it on --tcp
or --unix until stopped. The listening address is printed on stdout (with
the real port when PORT is 0), then one log line per stream opened and ended
(method, mode, status, traffic, duration) and any warning on stderr, each
with a timestamp.

SIGINT (Ctrl-C) or SIGTERM stops gracefully: no new connections, BYE to every
connection (the clients open no new streams), the open streams finish within
--grace seconds (those still open after it end with UNAVAILABLE), then exit 0.
A second SIGINT or SIGTERM exits at once.

exit status:
  0    stopped gracefully after SIGINT or SIGTERM
  1    cannot listen (address in use, permission denied, ...)
  2    usage error: bad arguments, a MODULE:ROUTER that does not load or is
       not a Router, unreadable TLS files
  130  a second SIGINT during the graceful stop (143 for SIGTERM)

examples:
  streamlet serve myapp.handlers:router --tcp 127.0.0.1:8000
  streamlet serve myapp:router --tcp 0.0.0.0:8443 --tls-cert cert.pem --tls-key key.pem
  streamlet serve myapp:router --unix /tmp/myapp.sock --grace 30
"""

CALL_HELP = f"""\
Call METHOD on a streamlet server and print what comes back, like grpcurl.

Values are JSON here and CBOR on the wire. unary and server_stream send
--data as the request (default: null). client_stream and bidi read NDJSON
from stdin, one JSON value a line (blank lines are skipped), sending each
chunk as its line is read; bidi prints the server's chunks while it sends.
Each chunk received is printed on stdout as one JSON line, flushed at once;
then the reply as one JSON line (unary, client_stream, and bidi when the
handler returns a value). Bytes received print as base64 strings; other
values JSON cannot hold print as text.

exit status:
  0    the call succeeded
  1    stdout was closed before the call ended
  2    a usage error: bad arguments, --data or a stdin line that is not
       JSON, a chunk too large to send; stderr starts with `streamlet call:`
  64+N the call failed with gRPC status N (as grpcurl does, so a status never
       looks like a usage error); stderr says `STATUS_NAME: message`:
{_STATUS_LIST}
       A server that cannot be reached (refused, TLS or handshake failure)
       is 78 (UNAVAILABLE).

examples:
  streamlet call 127.0.0.1:8000 add --mode unary --data '{{"a": 2, "b": 40}}'
  streamlet call 127.0.0.1:8000 ticks --mode server_stream --data '{{"n": 3}}'
  seq 10 | streamlet call unix:/tmp/myapp.sock total --mode client_stream
  printf '"ping"\\n"pong"\\n' | streamlet call 127.0.0.1:8000 echo --mode bidi
  streamlet call example.org:8443 add --mode unary --data '{{"a": 1, "b": 2}}' --tls --ca ca.pem
"""


def _bench_help() -> str:
    names = "\n".join(f"  {name}: {bench.description}" for name, bench in BENCHMARKS.items())
    return f"""\
Run streamlet's benchmarks (all of them, or the NAMEs given). The machines
they run on are shared and noisy, so each figure is measured beside a
baseline (the bare trio or socket equivalent) in the same run, the best of
several interleaved runs of each is kept, and the ratio is reported against
its target. Text mode prints each result as it is measured.

benchmarks:
{names}

exit status:
  0  the benchmarks ran (a missed target is reported, not an error)
  2  usage error (an unknown benchmark name)

examples:
  streamlet bench
  streamlet bench --quick --json {next(iter(BENCHMARKS), "NAME")}
"""


def _positive_mib(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of MiB: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 MiB, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """The parser for every command; `--help` on each is its manual."""
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="streamlet",
        description="An actor-based stream runtime for trio: a demo, a server and a client.",
        epilog="Run `streamlet COMMAND --help` for a command's options, exit status and examples.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="run each call mode against a demo server and check every step",
        description=DEMO_HELP,
        formatter_class=raw,
    )
    demo.add_argument(
        "--local",
        action="store_true",
        help="run the same steps in-process (streamlet.testing.open_local), with no socket",
    )
    demo.add_argument(
        "--size",
        type=_positive_mib,
        default=DEFAULT_SIZE_MIB,
        metavar="MiB",
        help=f"how much the large upload sends, in MiB (default: {DEFAULT_SIZE_MIB})",
    )

    serve = commands.add_parser(
        "serve",
        help="serve a Router from a Python module on TCP (TLS) or a Unix socket",
        description=SERVE_HELP,
        formatter_class=raw,
    )
    serve.add_argument(
        "router",
        metavar="MODULE:ROUTER",
        help="the module to import and the name of its streamlet.Router, e.g. myapp:router",
    )
    where = serve.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--tcp",
        metavar="HOST:PORT",
        help="listen on TCP; PORT 0 picks a free port, an empty HOST (:8000) every interface, "
        "an IPv6 HOST goes in brackets ([::1]:8000)",
    )
    where.add_argument(
        "--unix",
        metavar="PATH",
        help="listen on a Unix socket at PATH (a stale socket file there is replaced; the file "
        "is removed on exit)",
    )
    serve.add_argument("--tls-cert", metavar="FILE", help="TLS (with --tcp): PEM certificate chain")
    serve.add_argument("--tls-key", metavar="FILE", help="TLS (with --tcp): PEM private key")
    serve.add_argument(
        "--grace",
        type=_seconds,
        default=DEFAULT_GRACE,
        metavar="S",
        help=f"on SIGINT or SIGTERM, how long open streams may run on (default: {DEFAULT_GRACE:g})",
    )

    call = commands.add_parser(
        "call",
        help="call a method on a streamlet server, JSON in and NDJSON out",
        description=CALL_HELP,
        formatter_class=raw,
    )
    call.add_argument("address", metavar="ADDRESS", help="HOST:PORT, or unix:PATH")
    call.add_argument("method", metavar="METHOD", help="the method name the server registered")
    call.add_argument(
        "--mode",
        required=True,
        choices=[mode.value for mode in Mode],
        help="the call mode; it must be the one the method is served as (else UNIMPLEMENTED)",
    )
    call.add_argument(
        "--data",
        metavar="JSON",
        help="the request of a unary or server_stream call (default: null)",
    )
    call.add_argument(
        "--metadata",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="call metadata, sent in STREAM_OPEN; repeat it for several",
    )
    call.add_argument(
        "--deadline",
        type=_seconds,
        metavar="S",
        help="fail with DEADLINE_EXCEEDED after S seconds (default: 30 for unary, none otherwise)",
    )
    call.add_argument("--tls", action="store_true", help="connect with TLS (HOST:PORT only)")
    call.add_argument(
        "--ca",
        metavar="FILE",
        help="trust the PEM CA certificates in FILE instead of the system's (implies --tls)",
    )
    call.add_argument(
        "--server-name",
        metavar="NAME",
        help="the name the server's TLS certificate must carry (default: HOST)",
    )

    bench = commands.add_parser(
        "bench",
        help="run the benchmarks, each beside a same-run baseline",
        description=_bench_help(),
        formatter_class=raw,
    )
    bench.add_argument(
        "--json", action="store_true", help="print the results as one JSON document at the end"
    )
    bench.add_argument(
        "--quick", action="store_true", help="small sizes and fewer runs, for a smoke test"
    )
    bench.add_argument("names", nargs="*", metavar="NAME", help="run only these benchmarks")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            return run_demo(local=args.local, size_mib=args.size)
        if args.command == "serve":
            if args.tcp is not None:
                address = parse_tcp_address(args.tcp, what="--tcp")
            else:
                address = parse_call_address("unix:" + args.unix)
            return run_serve(
                args.router,
                address,
                tls_cert=args.tls_cert,
                tls_key=args.tls_key,
                grace=args.grace,
            )
        if args.command == "call":
            request = build_request(
                parse_call_address(args.address),
                args.method,
                args.mode,
                data=args.data,
                metadata=args.metadata,
                deadline=args.deadline,
                tls=args.tls,
                ca=args.ca,
                server_name=args.server_name,
            )
            return run_call(request)
        return _bench(args.names, quick=args.quick, json=args.json)
    except UsageError as exc:
        print(f"streamlet {args.command}: {exc}", file=sys.stderr)
        return USAGE_EXIT


def _bench(names: list[str], *, quick: bool, json: bool) -> int:
    try:
        run_benchmarks(names, quick=quick, json=json)
    except ValueError as exc:  # an unknown name, refused before anything runs
        raise UsageError(str(exc)) from None
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
