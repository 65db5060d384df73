"""Router registration rules."""

from __future__ import annotations

import pytest
from streamlet.codec.modes import Mode
from streamlet.runtime.router import Router


def test_decorators_register_by_method_name_and_mode() -> None:
    router = Router()

    @router.unary()
    async def add(request: int) -> int:
        return request

    @router.bidi("chat")
    async def chat_handler(stream: object) -> None:
        return None

    assert {(r.method, r.mode) for r in router} == {("add", Mode.UNARY), ("chat", Mode.BIDI)}
    route = router.route("add")
    assert route is not None and route.takes_request and not route.takes_stream
    assert router.route("missing") is None
    assert "chat" in router and len(router) == 2


def test_second_handler_for_a_method_is_refused() -> None:
    router = Router()

    @router.unary("x")
    async def one(request: int) -> int:
        return request

    with pytest.raises(ValueError, match="already registered"):

        @router.client_stream("x")
        async def two(stream: object) -> int:
            return 0


def test_sync_handler_is_refused() -> None:
    router = Router()
    with pytest.raises(TypeError, match="async function"):

        @router.unary("x")
        def sync(request: int) -> int:  # type: ignore[type-var]
            return request


def test_stream_handler_without_stream_parameter_is_refused() -> None:
    router = Router()
    with pytest.raises(TypeError, match=r"must take \(stream\)"):

        @router.client_stream("x")
        async def no_args() -> int:
            return 0


def test_empty_method_name_is_refused() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        Router().add("", "unary", _noop)


async def _noop(request: object) -> None:
    return None
