"""streamlet: an actor-based stream runtime for trio.

Each stream is its own actor (a trio task with a mailbox) that owns one
streaming call's state; streams pair in-process or cross a connection as
STREAM_* frames. This package is the public facade over three layers:
`streamlet.codec` (sans-IO wire format), `streamlet.actors` (the per-stream
state machine and actor) and `streamlet.runtime` (carriers, router, endpoints).
"""

from __future__ import annotations

from pathlib import Path as _Path

# Installed, the layers sit inside this package. Imported straight from a
# source checkout (the repo root on sys.path, as with `python -m pytest`), they
# are siblings of this folder: let the package find them there too.
_source_root = _Path(__file__).resolve().parent.parent
if not (_Path(__file__).parent / "codec").is_dir() and (_source_root / "codec").is_dir():
    __path__.append(str(_source_root))

from streamlet.actors import (  # noqa: E402
    ChunkTooLargeError,
    Role,
    Stream,
    StreamInfo,
    StreamStateError,
    open_pair,
    open_stream,
    pair,
)
from streamlet.codec import Encoding, Mode, ProtocolError, StatusCode, StreamError  # noqa: E402
from streamlet.runtime.carrier_errors import (  # noqa: E402
    CarrierError,
    ConnectionLostError,
    HandshakeError,
    PeerClosedError,
    PeerProtocolError,
    PeerUnresponsiveError,
)
from streamlet.runtime.dispatch import CallInfo, ServerStream  # noqa: E402
from streamlet.runtime.endpoints import (  # noqa: E402
    ConnectionSet,
    connect,
    connect_tcp,
    connect_unix,
    serve,
    serve_listeners,
    serve_tcp,
    serve_unix,
)
from streamlet.runtime.peer import Peer  # noqa: E402
from streamlet.runtime.router import Router  # noqa: E402
from streamlet.runtime.settings import ConnectionSettings  # noqa: E402

from . import testing  # noqa: E402

__all__ = [
    "CallInfo",
    "CarrierError",
    "ChunkTooLargeError",
    "ConnectionLostError",
    "ConnectionSet",
    "ConnectionSettings",
    "Encoding",
    "HandshakeError",
    "Mode",
    "Peer",
    "PeerClosedError",
    "PeerProtocolError",
    "PeerUnresponsiveError",
    "ProtocolError",
    "Role",
    "Router",
    "ServerStream",
    "StatusCode",
    "Stream",
    "StreamError",
    "StreamInfo",
    "StreamStateError",
    "connect",
    "connect_tcp",
    "connect_unix",
    "open_pair",
    "open_stream",
    "pair",
    "serve",
    "serve_listeners",
    "serve_tcp",
    "serve_unix",
    "testing",
]
