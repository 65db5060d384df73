"""`streamlet serve MODULE:ROUTER`: serve a user's router on TCP (TLS) or a Unix socket.

The module is imported as `python -m` would (the current directory first on
`sys.path`). The listening address goes to stdout once the server accepts
connections; a log line per stream opened and ended goes to stderr. SIGINT or
SIGTERM stops the server gracefully: stop accepting, BYE to every connection,
the open streams finish within the grace period, exit 0. A second signal
exits at once.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import signal
import ssl
import sys
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final, TextIO

import trio

from .cli_common import Address, UsageError
from .endpoints import ConnectionSet, serve_tcp, serve_unix
from .router import Router

log = logging.getLogger("streamlet.serve")

DEFAULT_GRACE: Final = 10.0
LISTEN_FAILED_EXIT: Final = 1
LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"

ServeFunction = Callable[..., Awaitable[None]]


def load_router(spec: str) -> Router:
    """Import `MODULE:ROUTER` (the current directory first on sys.path) and return the Router.

    ROUTER may be a dotted path inside the module (`app:api.router`). Every
    failure is a `UsageError` that says what was wrong and where it looked.
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise UsageError(
            f"expected MODULE:ROUTER, e.g. myapp.handlers:router (a module and the name of "
            f"its streamlet.Router), got {spec!r}"
        )
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name + ".").startswith(exc.name + "."):
            raise UsageError(
                f"no module named {module_name!r} (looked in {cwd} and on sys.path)"
            ) from None
        raise UsageError(
            f"importing {module_name!r} failed: {exc}\n{_user_traceback(exc)}"
        ) from None
    except Exception as exc:
        raise UsageError(
            f"importing {module_name!r} raised {type(exc).__name__}: {exc}\n{_user_traceback(exc)}"
        ) from None
    target: object = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            routers = sorted(
                name for name, value in vars(module).items() if isinstance(value, Router)
            )
            hint = f"; its Routers: {', '.join(routers)}" if routers else "; it has no Router"
            raise UsageError(f"module {module_name!r} has no attribute {attribute!r}{hint}")
        target = getattr(target, part)
    if not isinstance(target, Router):
        raise UsageError(
            f"{spec} is of type {type(target).__name__}, not a streamlet.Router: "
            "point at the Router your handlers are registered on"
        )
    return target


def _user_traceback(exc: BaseException) -> str:
    """The traceback of an import that failed, without the import machinery's own frames."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [
        frame
        for frame in frames
        if frame.filename != __file__
        and not frame.filename.startswith("<frozen ")
        and "importlib" not in frame.filename
    ]
    lines = traceback.format_list(own) + traceback.format_exception_only(exc)
    return "Traceback (most recent call last):\n" + "".join(lines).rstrip()


def server_ssl_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    """A server TLS context from a PEM certificate chain and key, or None without them."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise UsageError("--tls-cert and --tls-key go together: give both, or neither")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise UsageError(
            f"--tls-cert {cert} and --tls-key {key} are not a PEM certificate chain and its "
            f"private key: {exc}"
        ) from None
    except OSError as exc:
        raise UsageError(f"cannot read the TLS files: {exc}") from None
    return context


def configure_logging() -> None:
    """Stream lines (INFO) and every warning to stderr, each with a timestamp."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    for name in ("streamlet.streams", "streamlet.serve"):
        logging.getLogger(name).setLevel(logging.INFO)


def run_serve(
    spec: str,
    address: Address,
    *,
    tls_cert: str | None,
    tls_key: str | None,
    grace: float,
    out: TextIO | None = None,
) -> int:
    """Serve until SIGINT or SIGTERM; returns the exit code (see `streamlet serve --help`)."""
    if grace < 0:
        raise UsageError(f"--grace must be >= 0 seconds, got {grace:g}")
    ssl_context = server_ssl_context(tls_cert, tls_key)
    if ssl_context is not None and address.unix_path is not None:
        raise UsageError("TLS is for --tcp; a Unix socket is served without it")
    router = load_router(spec)
    configure_logging()
    out = sys.stdout if out is None else out
    return trio.run(_serve, router, address, ssl_context, grace, out)


async def _serve(
    router: Router,
    address: Address,
    ssl_context: ssl.SSLContext | None,
    grace: float,
    out: TextIO,
) -> int:
    connections = ConnectionSet()
    serve: ServeFunction
    if address.unix_path is not None:
        serve = functools.partial(serve_unix, router, address.unix_path, connections=connections)
    else:
        serve = functools.partial(
            serve_tcp,
            router,
            address.port,
            host=address.host or None,
            ssl_context=ssl_context,
            connections=connections,
        )
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            try:
                listeners = await nursery.start(serve)
            except OSError as exc:
                print(
                    f"streamlet serve: cannot listen on {address}: {_os_error(exc)}",
                    file=sys.stderr,
                )
                return LISTEN_FAILED_EXIT
            for bound in _bound_addresses(listeners, address, tls=ssl_context is not None):
                print(f"listening on {bound}", file=out, flush=True)
            methods = ", ".join(f"{route.method} ({route.mode.value})" for route in router)
            log.info("serving %d methods: %s", len(router), methods or "none")
            signum = await signals.__anext__()
            name = signal.Signals(signum).name
            log.info(
                "%s: stopping; BYE to %d connection(s), up to %g s for %d open stream(s) "
                "(Ctrl-C again to exit now)",
                name,
                len(connections),
                grace,
                connections.open_streams,
            )
            forced: list[int] = []
            async with trio.open_nursery() as stopping:
                stopping.start_soon(_force_on_signal, signals, nursery.cancel_scope, forced)
                await connections.shutdown(f"the server is shutting down ({name})", grace=grace)
                stopping.cancel_scope.cancel()
    if forced:
        print(
            f"streamlet serve: {signal.Signals(forced[0]).name} again: exited at once",
            file=sys.stderr,
        )
        return 128 + forced[0]
    log.info("stopped: every connection closed")
    return 0


async def _force_on_signal(
    signals: AsyncIterator[int], scope: trio.CancelScope, forced: list[int]
) -> None:
    """A second SIGINT or SIGTERM during the graceful stop: cancel everything now."""
    forced.append(await signals.__anext__())
    scope.cancel()


def _os_error(exc: OSError) -> str:
    return exc.strerror if exc.strerror and not exc.filename else str(exc)


def _bound_addresses(
    listeners: list[trio.abc.Listener[trio.abc.Stream]], address: Address, *, tls: bool
) -> list[str]:
    """What each listener is bound to, as `streamlet call` takes it (the real port for 0)."""
    if address.unix_path is not None:
        return [str(address)]
    bound = []
    for listener in listeners:
        inner = listener.transport_listener if isinstance(listener, trio.SSLListener) else listener
        if not isinstance(inner, trio.SocketListener):
            continue
        host, port = inner.socket.getsockname()[:2]
        text = str(Address(host=host, port=port))
        bound.append(f"{text} (TLS)" if tls else text)
    return bound
