"""Every call mode end to end over each transport: TCP loopback, TLS, a Unix socket, memory.

One carrier implementation runs over any `trio.abc.Stream`; these tests pin
that by running the same calls over each endpoint pair.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
import trustme
from streamlet.codec import StatusCode, StreamError
from streamlet.runtime.carrier_errors import HandshakeError, PeerClosedError
from streamlet.runtime.endpoints import (
    connect_tcp,
    connect_unix,
    open_memory_connection,
    serve_tcp,
    serve_unix,
)
from streamlet.runtime.peer import Peer
from streamlet.runtime.router import Router

TRANSPORTS = ["memory", "tcp", "tls", "unix"]


def make_router() -> Router:
    router = Router()

    @router.unary("double")
    async def double(request: int) -> int:
        return request * 2

    @router.server_stream("ticks")
    async def ticks(request: dict[str, int], stream: Any) -> None:
        for i in range(request["n"]):
            await stream.send({"i": i})

    @router.client_stream("total")
    async def total(stream: Any) -> int:
        return sum([chunk async for chunk in stream])

    @router.bidi("echo")
    async def echo(stream: Any) -> None:
        async for chunk in stream:
            await stream.send(chunk)

    return router


def tcp_port(listeners: list[Any]) -> int:
    listener = listeners[0]
    sock = (
        listener.transport_listener.socket
        if hasattr(listener, "transport_listener")
        else (listener.socket)
    )
    port: int = sock.getsockname()[1]
    return port


@asynccontextmanager
async def connected(transport: str, router: Router, tmp_path: Path) -> AsyncIterator[Peer]:
    if transport == "memory":
        async with open_memory_connection(router) as peer:
            yield peer
        return
    async with trio.open_nursery() as nursery:
        if transport == "unix":
            path = tmp_path / "streamlet.sock"
            await nursery.start(serve_unix, router, path)
            async with connect_unix(path) as peer:
                yield peer
        elif transport == "tcp":
            listeners = await nursery.start(partial(serve_tcp, host="127.0.0.1"), router, 0)
            async with connect_tcp("127.0.0.1", tcp_port(listeners)) as peer:
                yield peer
        else:
            ca = trustme.CA()
            server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert("localhost").configure_cert(server_context)
            client_context = ssl.create_default_context()
            ca.configure_trust(client_context)
            serve_tls = partial(serve_tcp, host="127.0.0.1", ssl_context=server_context)
            listeners = await nursery.start(serve_tls, router, 0)
            async with connect_tcp(
                "127.0.0.1",
                tcp_port(listeners),
                ssl_context=client_context,
                server_hostname="localhost",
            ) as peer:
                yield peer
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_every_mode_over_the_transport(transport: str, tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with connected(transport, make_router(), tmp_path) as peer:
            assert await peer.call_unary("double", 21) == 42
            assert await peer.call_server_stream("ticks", {"n": 3}) == [{"i": i} for i in range(3)]
            assert await peer.call_client_stream("total", range(100)) == 4950
            async with peer.open_stream("echo", mode="bidi", encoding="raw") as stream:
                big = b"\x07" * 300_000  # fragmented over several frames
                await stream.send(big)
                assert await stream.recv() == big
                await stream.close_send()
                assert [chunk async for chunk in stream] == []


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_errors_cross_the_transport(transport: str, tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with connected(transport, make_router(), tmp_path) as peer:
            with pytest.raises(StreamError) as caught:
                await peer.call_unary("missing", 1)
    assert caught.value.code is StatusCode.NOT_FOUND
    assert caught.value.message == "no handler for method 'missing'"


async def test_many_clients_on_one_tcp_server() -> None:
    router = make_router()
    results: list[int] = []
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(serve_tcp, host="127.0.0.1"), router, 0)
            port = tcp_port(listeners)

            async def client(i: int) -> None:
                async with connect_tcp("127.0.0.1", port) as peer:
                    results.append(await peer.call_unary("double", i))

            async with trio.open_nursery() as clients:
                for i in range(20):
                    clients.start_soon(client, i)
            nursery.cancel_scope.cancel()
    assert sorted(results) == [2 * i for i in range(20)]


async def test_serve_unix_replaces_a_stale_socket_and_removes_it_after(tmp_path: Path) -> None:
    path = tmp_path / "stale.sock"
    with trio.fail_after(10):
        for _ in range(2):  # the second run finds no file; a crash would have left one
            async with trio.open_nursery() as nursery:
                await nursery.start(serve_unix, make_router(), path)
                assert path.exists()
                async with connect_unix(path) as peer:
                    assert await peer.call_unary("double", 1) == 2
                nursery.cancel_scope.cancel()
            assert not path.exists()


async def test_serve_unix_refuses_a_path_that_is_not_a_socket(tmp_path: Path) -> None:
    path = tmp_path / "regular-file"
    path.write_text("not a socket")
    with pytest.raises(OSError, match="exists and is not a socket"):
        await serve_unix(make_router(), path)


async def test_a_failed_tls_handshake_is_a_handshake_error_and_the_server_keeps_serving() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    untrusting = ssl.create_default_context()  # does not know the test CA
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            serve_tls = partial(serve_tcp, host="127.0.0.1", ssl_context=server_context)
            port = tcp_port(await nursery.start(serve_tls, make_router(), 0))
            with pytest.raises(HandshakeError) as caught:
                async with connect_tcp(
                    "127.0.0.1", port, ssl_context=untrusting, server_hostname="localhost"
                ):
                    pytest.fail("an untrusted certificate must not connect")
            async with connect_tcp(
                "127.0.0.1", port, ssl_context=trusting, server_hostname="localhost"
            ) as peer:
                assert await peer.call_unary("double", 4) == 8
            nursery.cancel_scope.cancel()
    assert "handshake failed: the connection broke before the HELLO_ACK" in str(caught.value)
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)


async def test_a_server_shutting_down_tells_its_clients_with_bye() -> None:
    router = Router()
    holding = trio.Event()

    @router.bidi("hold")
    async def hold(stream: Any) -> None:
        holding.set()
        await trio.sleep_forever()

    with trio.fail_after(10):
        async with trio.open_nursery() as clients, trio.open_nursery() as server:
            port = tcp_port(await server.start(partial(serve_tcp, host="127.0.0.1"), router, 0))
            peer_box: list[Peer] = []
            errors: list[StreamError] = []

            async def client() -> None:
                async with connect_tcp("127.0.0.1", port) as peer:
                    peer_box.append(peer)
                    async with peer.open_stream("hold", mode="bidi") as stream:
                        await stream.send(1)
                        with pytest.raises(StreamError) as caught:
                            await stream.recv()
                        errors.append(caught.value)

            clients.start_soon(client)
            await holding.wait()
            server.cancel_scope.cancel()
    assert errors[0].code is StatusCode.UNAVAILABLE
    assert errors[0].message == (
        "connection lost: the peer closed the connection: UNAVAILABLE: the sender is shutting down"
    )
    assert isinstance(peer_box[0].failure, PeerClosedError)
