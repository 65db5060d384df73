"""The router: handlers registered by method name and call mode.

A handler's signature follows its mode, as in gRPC's Python API:

- unary:         ``async def f(request, stream) -> reply``
- server_stream: ``async def f(request, stream) -> None``   (sends chunks; return ends)
- client_stream: ``async def f(stream) -> reply``           (``async for`` over chunks)
- bidi:          ``async def f(stream) -> reply | None``     (None ends with END)

For unary and server_stream handlers the ``stream`` argument may be left
out; the router sees that once, at registration.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, TypeVar

import attrs
from streamlet.codec.modes import Mode

Handler = Callable[..., Awaitable[Any]]
H = TypeVar("H", bound=Handler)

# Hook run on each incoming stream before its handler: (method, metadata) -> None,
# raising StreamError (UNAUTHENTICATED, PERMISSION_DENIED, ...) to refuse it.
StreamGate = Callable[[str, Mapping[str, str]], Awaitable[None]]


@attrs.frozen
class Route:
    """One registered handler: its method name, its mode, and how to call it."""

    method: str
    mode: Mode
    handler: Handler
    takes_request: bool  # unary and server_stream handlers get the request first
    takes_stream: bool


def _accepts_stream(handler: Handler, takes_request: bool) -> bool:
    """Whether the handler wants the stream argument (only optional for request handlers)."""
    if not inspect.iscoroutinefunction(handler):
        raise TypeError(f"handler {handler!r} must be an async function")
    params = [
        p
        for p in inspect.signature(handler).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    has_varargs = any(
        p.kind is p.VAR_POSITIONAL for p in inspect.signature(handler).parameters.values()
    )
    needed = 2 if takes_request else 1
    if has_varargs or len(params) >= needed:
        return True
    if takes_request and len(params) == 1:
        return False
    expected = "(request, stream) or (request)" if takes_request else "(stream)"
    raise TypeError(f"handler {handler.__qualname__} must take {expected}")


class Router:
    """Handlers by method name; one router can serve many connections and local pairs."""

    def __init__(self, *, gate: StreamGate | None = None) -> None:
        self._routes: dict[str, Route] = {}
        self.gate = gate

    def add(self, method: str, mode: Mode | str, handler: Handler) -> Route:
        """Register `handler` for `method` in `mode`; a method has one handler."""
        mode = Mode(mode)
        if not method or not isinstance(method, str):
            raise ValueError(f"method name must be a non-empty string, got {method!r}")
        if method in self._routes:
            raise ValueError(f"method {method!r} is already registered")
        takes_request = mode in (Mode.UNARY, Mode.SERVER_STREAM)
        route = Route(
            method=method,
            mode=mode,
            handler=handler,
            takes_request=takes_request,
            takes_stream=_accepts_stream(handler, takes_request),
        )
        self._routes[method] = route
        return route

    def _decorator(self, mode: Mode, method: str | None) -> Callable[[H], H]:
        def register(handler: H) -> H:
            self.add(method or handler.__name__, mode, handler)
            return handler

        return register

    def unary(self, method: str | None = None) -> Callable[[H], H]:
        """Register a one-request, one-reply handler."""
        return self._decorator(Mode.UNARY, method)

    def server_stream(self, method: str | None = None) -> Callable[[H], H]:
        """Register a one-request, many-chunks handler."""
        return self._decorator(Mode.SERVER_STREAM, method)

    def client_stream(self, method: str | None = None) -> Callable[[H], H]:
        """Register a many-chunks, one-reply handler."""
        return self._decorator(Mode.CLIENT_STREAM, method)

    def bidi(self, method: str | None = None) -> Callable[[H], H]:
        """Register a handler that streams both ways."""
        return self._decorator(Mode.BIDI, method)

    def route(self, method: str) -> Route | None:
        """The route for `method`, or None when nothing is registered under it."""
        return self._routes.get(method)

    def __iter__(self) -> Iterator[Route]:
        return iter(self._routes.values())

    def __len__(self) -> int:
        return len(self._routes)

    def __contains__(self, method: object) -> bool:
        return method in self._routes
