"""What the `streamlet` commands share: the usage error and parsing addresses.

A `UsageError` is a mistake in how a command was called (a bad argument, a
MODULE:ROUTER that does not load, bad input on stdin): the command prints its
message and exits with `USAGE_EXIT`, as argparse does for a malformed command line.
"""

from __future__ import annotations

from typing import Final

import attrs

USAGE_EXIT: Final = 2
STATUS_EXIT_BASE: Final = 64  # `streamlet call` exits with 64 + the failed call's status code


class UsageError(Exception):
    """The command cannot run as called; the message says what to change."""


@attrs.frozen
class Address:
    """Where a server listens or a client connects: TCP `host:port`, or a Unix socket path."""

    host: str | None = None  # TCP; "" on the command line means every interface (serve only)
    port: int = 0
    unix_path: str | None = None

    def __str__(self) -> str:
        if self.unix_path is not None:
            return f"unix:{self.unix_path}"
        host = self.host or ""
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"


def parse_tcp_address(text: str, *, what: str) -> Address:
    """`HOST:PORT` (an IPv6 host in brackets, `[::1]:8000`) as an `Address`."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise UsageError(f"{what} must be HOST:PORT (e.g. 127.0.0.1:8000), got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise UsageError(f"{what}: put an IPv6 host in brackets, e.g. [::1]:8000; got {text!r}")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise UsageError(f"{what}: the port must be a number from 0 to 65535, got {port_text!r}")
    return Address(host=host, port=int(port_text))


def parse_call_address(text: str) -> Address:
    """`streamlet call`'s ADDRESS: `HOST:PORT` or `unix:PATH`."""
    if text.startswith("unix:"):
        path = text.removeprefix("unix:")
        if not path:
            raise UsageError("ADDRESS unix:PATH needs a path, e.g. unix:/tmp/streamlet.sock")
        return Address(unix_path=path)
    address = parse_tcp_address(text, what="ADDRESS")
    if not address.host:
        raise UsageError(f"ADDRESS needs a host, e.g. 127.0.0.1:{address.port}; got {text!r}")
    if address.port == 0:
        raise UsageError(f"ADDRESS needs the server's port, not 0; got {text!r}")
    return address
