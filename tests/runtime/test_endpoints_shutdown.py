"""Graceful server shutdown: a `ConnectionSet` stops accepting, sends BYE, lets streams finish.

`connections.shutdown(reason, grace=...)` is what `streamlet serve` runs on
SIGINT or SIGTERM; these tests pin each promise of its docstring in-process.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
from streamlet.codec import StatusCode, StreamError
from streamlet.runtime.endpoints import (
    ConnectionSet,
    connect_tcp,
    connect_unix,
    serve_tcp,
    serve_unix,
)
from streamlet.runtime.router import Router
from streamlet.runtime.settings import ConnectionSettings


def make_router(release: trio.Event, started: trio.Event) -> Router:
    router = Router()

    @router.unary("slow")
    async def slow(request: int) -> int:
        started.set()
        await release.wait()
        return request + 1

    @router.unary("fast")
    async def fast(request: int) -> int:
        return request * 2

    return router


async def until(condition: Callable[[], bool]) -> None:
    """Wait for a condition that socket I/O makes true (there is no event to wait on)."""
    while True:
        if condition():
            return
        await trio.sleep(0.01)


def port_of(listeners: list[Any]) -> int:
    port: int = listeners[0].socket.getsockname()[1]
    return port


async def test_shutdown_lets_a_stream_in_flight_finish_and_sends_bye() -> None:
    release, started = trio.Event(), trio.Event()
    connections = ConnectionSet()
    serve = partial(serve_tcp, make_router(release, started), 0, host="127.0.0.1")
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(serve, connections=connections))
        async with (
            connect_tcp("127.0.0.1", port_of(listeners)) as peer,
            peer.open_stream("slow", mode="unary") as stream,
        ):
            await stream.send(41)
            await started.wait()
            assert len(connections) == 1 and connections.open_streams == 1
            nursery.start_soon(partial(connections.shutdown, "going away", grace=30))
            await until(lambda: peer.info().bye_received)
            assert not peer.is_open
            with pytest.raises(StreamError) as refused:
                async with peer.open_stream("fast", mode="unary"):
                    pass
            assert refused.value.code is StatusCode.UNAVAILABLE
            release.set()
            assert await stream.await_reply() == 42
    # The nursery closed on its own: serve_tcp returned once the connection was done.
    assert len(connections) == 0 and connections.shutting_down


async def test_shutdown_stops_accepting_new_connections() -> None:
    connections = ConnectionSet()
    serve = partial(serve_tcp, make_router(trio.Event(), trio.Event()), 0, host="127.0.0.1")
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(serve, connections=connections))
        port = port_of(listeners)
        async with connect_tcp("127.0.0.1", port) as peer:
            assert await peer.call_unary("fast", 21) == 42
        await connections.shutdown("bye")
    with pytest.raises(OSError):
        await trio.open_tcp_stream("127.0.0.1", port)


async def test_streams_still_open_after_the_grace_period_end_unavailable() -> None:
    release, started = trio.Event(), trio.Event()
    connections = ConnectionSet()
    serve = partial(serve_tcp, make_router(release, started), 0, host="127.0.0.1")
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(serve, connections=connections))
        async with (
            connect_tcp("127.0.0.1", port_of(listeners)) as peer,
            peer.open_stream("slow", mode="unary") as stream,
        ):
            await stream.send(1)
            await started.wait()
            nursery.start_soon(partial(connections.shutdown, "no time left", grace=0.05))
            with pytest.raises(StreamError) as ended:
                await stream.await_reply()
    assert ended.value.code is StatusCode.UNAVAILABLE


async def test_a_connection_still_in_its_handshake_does_not_hold_up_shutdown() -> None:
    settings = ConnectionSettings(handshake_timeout=60)
    connections = ConnectionSet()
    router = make_router(trio.Event(), trio.Event())
    serve = partial(serve_tcp, router, 0, host="127.0.0.1", settings=settings)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(serve, connections=connections))
        silent = await trio.open_tcp_stream("127.0.0.1", port_of(listeners))  # never says HELLO
        await until(lambda: len(connections) == 1)
        with trio.fail_after(30):  # a hang guard, far below the handshake timeout
            await connections.shutdown("bye", grace=30)
        assert await silent.receive_some(1024) == b""  # closed by the server
        await silent.aclose()


async def test_one_set_shuts_down_several_servers(tmp_path: Path) -> None:
    connections = ConnectionSet()
    router = make_router(trio.Event(), trio.Event())
    path = tmp_path / "s.sock"
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            partial(serve_tcp, router, 0, host="127.0.0.1", connections=connections)
        )
        await nursery.start(partial(serve_unix, router, path, connections=connections))
        async with (
            connect_tcp("127.0.0.1", port_of(listeners)) as tcp_peer,
            connect_unix(path) as unix_peer,
        ):
            assert await unix_peer.call_unary("fast", 1) == 2
            assert await tcp_peer.call_unary("fast", 2) == 4
            assert len(connections) == 2
            await connections.shutdown("both")
            assert tcp_peer.info().bye_received and unix_peer.info().bye_received
    assert not path.exists()


async def test_serving_with_a_set_already_shut_down_is_an_error() -> None:
    connections = ConnectionSet()
    await connections.shutdown()
    router = make_router(trio.Event(), trio.Event())
    with pytest.raises(RuntimeError, match="has been shut down"):
        await serve_tcp(router, 0, host="127.0.0.1", connections=connections)


async def test_serve_unix_refuses_a_socket_another_server_listens_on(tmp_path: Path) -> None:
    path = tmp_path / "busy.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as other:
        other.bind(str(path))
        other.listen(1)
        with pytest.raises(OSError) as busy:
            await serve_unix(Router(), path)
    assert busy.value.errno == errno.EADDRINUSE
    assert "already listening" in str(busy.value)
    assert path.exists()  # the other server's socket is left alone


async def test_serve_unix_replaces_a_stale_socket_file(tmp_path: Path) -> None:
    path = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as gone:
        gone.bind(str(path))  # bound, never listening, then closed: a stale file
    connections = ConnectionSet()
    router = make_router(trio.Event(), trio.Event())
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(serve_unix, router, path, connections=connections))
        async with connect_unix(path) as peer:
            assert await peer.call_unary("fast", 5) == 10
        await connections.shutdown()
