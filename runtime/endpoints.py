"""Endpoints: serving a router on a connection or a listener, and connecting to one.

`serve` runs one connection to its end; `serve_tcp` and `serve_unix` accept
connections and give each its own carrier, so one bad connection (garbage, a
failed handshake, a reset) is logged and never stops the server. A
`ConnectionSet` passed to them tracks the live connections, so a server can
stop gracefully: stop accepting, BYE to every connection, let the open streams
finish within a grace period. `connect`,
`connect_tcp` and `connect_unix` yield a `Peer` for the body of an `async
with` and close the connection gracefully after it. `open_memory_connection`
is the whole wire path over an in-memory byte stream, for tests.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import ssl
import stat
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import partial

import trio
import trio.testing
from streamlet.actors import open_owner_nursery
from streamlet.codec import Side

from .carrier import Carrier
from .carrier_errors import CarrierError
from .peer import Peer
from .router import Router
from .settings import DEFAULT_SETTINGS, ConnectionSettings

log = logging.getLogger("streamlet.endpoints")

BACKLOG = 128


async def serve(
    router: Router,
    byte_stream: trio.abc.Stream,
    *,
    settings: ConnectionSettings = DEFAULT_SETTINGS,
) -> None:
    """Serve `router` on one accepted connection until it ends.

    Returns when the connection closed gracefully; raises a `CarrierError`
    (a `ConnectionError`) saying why otherwise. Streams the peer opens are
    served here; this side may not open streams on it (use `connect` for that).
    """
    await Carrier(byte_stream, side=Side.ACCEPTOR, router=router, settings=settings).run()


class ConnectionSet:
    """The live connections of one or more servers, so they can be shut down gracefully.

    Pass the same set as `connections=` to `serve_tcp`, `serve_unix` or
    `serve_listeners`: each accepted connection's carrier is in the set while
    it runs. `shutdown` is the graceful stop a server process wants on SIGTERM.
    """

    def __init__(self) -> None:
        self._connections: dict[Carrier, trio.CancelScope] = {}
        self._accept_scopes: set[trio.CancelScope] = set()
        self._shutting_down = False

    def __repr__(self) -> str:
        return f"<ConnectionSet: {len(self)} connections, {self.open_streams} streams>"

    def __len__(self) -> int:
        return len(self._connections)

    def __iter__(self) -> Iterator[Carrier]:
        return iter(list(self._connections))

    @property
    def shutting_down(self) -> bool:
        """Whether `shutdown` has been called: nothing new is accepted."""
        return self._shutting_down

    @property
    def open_streams(self) -> int:
        """Streams open on the set's connections right now."""
        return sum(carrier.info().streams for carrier in self._connections)

    async def shutdown(self, reason: str = "", *, grace: float | None = None) -> None:
        """Stop accepting, send BYE to every connection, let their open streams finish.

        Every server using this set stops accepting and closes its listeners
        at once. Each connection gets BYE (with `reason`): the peer opens no
        new streams, and the streams already open run to their end. After
        `grace` seconds (default: each connection's `close_timeout`) the
        streams still open end with UNAVAILABLE. A connection still in its
        handshake has nothing to finish and is closed at once. Returns once
        every connection has closed; the `serve_*` calls then return.
        """
        self._shutting_down = True
        for scope in self._accept_scopes:
            scope.cancel()
        async with trio.open_nursery() as nursery:
            for carrier, scope in list(self._connections.items()):
                if carrier.peer_settings is None:
                    scope.cancel()
                else:
                    nursery.start_soon(partial(carrier.shutdown, reason, grace=grace))

    @contextmanager
    def _accepting(self) -> Iterator[None]:
        """The scope of one server's accept loops: `shutdown` cancels it."""
        with self._scope() as scope:
            self._accept_scopes.add(scope)
            try:
                yield
            finally:
                self._accept_scopes.discard(scope)

    @contextmanager
    def _tracking(self, carrier: Carrier) -> Iterator[None]:
        """The scope of one connection's carrier, in the set while it runs."""
        with self._scope() as scope:
            self._connections[carrier] = scope
            try:
                yield
            finally:
                del self._connections[carrier]

    @contextmanager
    def _scope(self) -> Iterator[trio.CancelScope]:
        with trio.CancelScope() as scope:
            if self._shutting_down:  # arrived after shutdown began: stop at once
                scope.cancel()
            yield scope


async def _serve_logged(
    router: Router,
    settings: ConnectionSettings,
    connections: ConnectionSet,
    byte_stream: trio.abc.Stream,
) -> None:
    """One accepted connection of a listener: its failure is logged, never raised."""
    carrier = Carrier(byte_stream, side=Side.ACCEPTOR, router=router, settings=settings)
    with connections._tracking(carrier):
        try:
            await carrier.run()
        except CarrierError as exc:
            log.info("streamlet connection ended: %s", exc)


async def serve_listeners(
    router: Router,
    listeners: list[trio.abc.Listener[trio.abc.Stream]],
    *,
    settings: ConnectionSettings = DEFAULT_SETTINGS,
    connections: ConnectionSet | None = None,
    task_status: trio.TaskStatus[list[trio.abc.Listener[trio.abc.Stream]]] = (
        trio.TASK_STATUS_IGNORED
    ),
) -> None:
    """Serve `router` on every connection the listeners accept.

    Runs until cancelled, or until `connections.shutdown()` has closed the
    listeners and every connection (then it returns).
    """
    connections = ConnectionSet() if connections is None else connections
    if connections.shutting_down:
        for listener in listeners:
            await trio.aclose_forcefully(listener)
        raise RuntimeError("this ConnectionSet has been shut down: serve with a new one")
    handler = partial(_serve_logged, router, settings, connections)
    async with trio.open_nursery() as connection_nursery:
        with connections._accepting():
            await trio.serve_listeners(
                handler, listeners, handler_nursery=connection_nursery, task_status=task_status
            )


async def serve_tcp(
    router: Router,
    port: int,
    *,
    host: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    settings: ConnectionSettings = DEFAULT_SETTINGS,
    connections: ConnectionSet | None = None,
    task_status: trio.TaskStatus[list[trio.abc.Listener[trio.abc.Stream]]] = (
        trio.TASK_STATUS_IGNORED
    ),
) -> None:
    """Serve `router` over TCP (TLS with `ssl_context`) until cancelled or shut down.

    For `nursery.start`: `task_status.started(listeners)` hands back the trio
    listeners (port 0 picks a free port: read it from the listener's socket).
    With `connections`, `connections.shutdown()` stops it gracefully.
    """
    tcp = await trio.open_tcp_listeners(port, host=host, backlog=BACKLOG)
    listeners: list[trio.abc.Listener[trio.abc.Stream]] = list(tcp)
    if ssl_context is not None:
        listeners = [
            trio.SSLListener(listener, ssl_context, https_compatible=False) for listener in tcp
        ]
    await serve_listeners(
        router, listeners, settings=settings, connections=connections, task_status=task_status
    )


async def serve_unix(
    router: Router,
    path: str | os.PathLike[str],
    *,
    settings: ConnectionSettings = DEFAULT_SETTINGS,
    connections: ConnectionSet | None = None,
    task_status: trio.TaskStatus[list[trio.abc.Listener[trio.abc.Stream]]] = (
        trio.TASK_STATUS_IGNORED
    ),
) -> None:
    """Serve `router` on a Unix socket at `path` until cancelled or shut down.

    The socket file is removed after. A stale socket file at `path` is
    replaced; a socket some server still listens on, or any other file, is an
    `OSError` (EADDRINUSE). With `connections`, `connections.shutdown()` stops
    it gracefully.
    """
    path = os.fspath(path)
    _remove_stale_socket(path)
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        await sock.bind(path)
        sock.listen(BACKLOG)
        listener = trio.SocketListener(sock)
    except BaseException:
        sock.close()
        raise
    try:
        await serve_listeners(
            router, [listener], settings=settings, connections=connections, task_status=task_status
        )
    finally:
        sock.close()
        _remove_stale_socket(path)


def _remove_stale_socket(path: str) -> None:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise OSError(errno.EADDRINUSE, f"{path} exists and is not a socket")
    if _is_listening(path):
        raise OSError(errno.EADDRINUSE, f"a server is already listening on {path}")
    os.unlink(path)


def _is_listening(path: str) -> bool:
    """Whether a server accepts connections on the Unix socket at `path` (else it is stale)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.setblocking(False)
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            return False
        except BlockingIOError:  # the backlog is full: someone is listening
            return True
        return True


@asynccontextmanager
async def connect(
    byte_stream: trio.abc.Stream,
    *,
    router: Router | None = None,
    settings: ConnectionSettings = DEFAULT_SETTINGS,
) -> AsyncIterator[Peer]:
    """Connect over `byte_stream` (HELLO first) and yield the `Peer` for the body.

    A failed handshake raises `HandshakeError` here. With a `router`, this
    side also serves the streams the other side opens. A connection that fails
    later does not interrupt the body: its streams end with UNAVAILABLE and
    `peer.failure` says why. Leaving the body closes the connection gracefully.
    """
    carrier = Carrier(byte_stream, side=Side.CONNECTOR, router=router, settings=settings)
    async with open_owner_nursery() as nursery:
        await nursery.start(_run_connected, carrier)
        try:
            yield Peer(carrier)
        finally:
            with trio.CancelScope(shield=True):
                await carrier.shutdown()


async def _run_connected(
    carrier: Carrier, *, task_status: trio.TaskStatus[Carrier] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run a connecting carrier: a handshake failure raises, a later failure is kept on it."""
    try:
        await carrier.run(task_status=task_status)
    except CarrierError:
        if carrier.peer_settings is None:
            raise


@asynccontextmanager
async def connect_tcp(
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    router: Router | None = None,
    settings: ConnectionSettings = DEFAULT_SETTINGS,
) -> AsyncIterator[Peer]:
    """Connect to a streamlet server over TCP (TLS with `ssl_context`); yield the `Peer`."""
    byte_stream: trio.abc.Stream = await trio.open_tcp_stream(host, port)
    if ssl_context is not None:
        byte_stream = trio.SSLStream(
            byte_stream,
            ssl_context,
            server_hostname=server_hostname or host,
            https_compatible=False,
        )
    async with connect(byte_stream, router=router, settings=settings) as peer:
        yield peer


@asynccontextmanager
async def connect_unix(
    path: str | os.PathLike[str],
    *,
    router: Router | None = None,
    settings: ConnectionSettings = DEFAULT_SETTINGS,
) -> AsyncIterator[Peer]:
    """Connect to a streamlet server on a Unix socket; yield the `Peer`."""
    byte_stream = await trio.open_unix_socket(os.fspath(path))
    async with connect(byte_stream, router=router, settings=settings) as peer:
        yield peer


@asynccontextmanager
async def open_memory_connection(
    router: Router,
    *,
    client_router: Router | None = None,
    settings: ConnectionSettings = DEFAULT_SETTINGS,
    server_settings: ConnectionSettings | None = None,
) -> AsyncIterator[Peer]:
    """A connection to `router` over an in-memory byte stream: the full wire path, no socket.

    The server side runs for the body; its failure, if any, is logged.
    """
    client_end, server_end = trio.testing.memory_stream_pair()
    async with open_owner_nursery() as nursery:
        serve_server_end = partial(
            _serve_logged, router, server_settings or settings, ConnectionSet(), server_end
        )
        nursery.start_soon(serve_server_end)
        async with connect(client_end, router=client_router, settings=settings) as peer:
            yield peer
