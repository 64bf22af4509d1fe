"""`mlyard tui --web`: the same terminal UI in a browser, served by textual-serve.

Each browser tab gets its own `mlyard tui` process on this project, read-only unless
the server was started with `--allow-actions` (which needs a token). With a token, the
first visit carries it as `?token=...`, which sets an HTTP-only cookie for the page's
websocket and later loads; a wrong or missing token is a 401, and the token is masked in
the access log.

A page from another site is a stranger even on this machine: every request whose
`Origin` is not this server's own is refused (so no other page can open the websocket
and press keys), and the `Host` must name this server as `mlyard serve` checks it (the
loopback names, the address bound, each --allowed-host), so a rebound DNS name cannot
reach it. Terminal sizes from the browser are capped.
"""

from __future__ import annotations

import hmac
import logging
import re
import shlex
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from textual_serve.app_service import AppService
from textual_serve.server import Server

from mlyard.core.workspace import Workspace

COOKIE = "mlyard_token"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Far beyond any screen (a 4K monitor at a small font is ~480x130), far below what makes
# a session's process grow without bound (one 100000x100000 resize took 10 GB).
MAX_COLUMNS, MAX_ROWS = 1000, 400
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")
_TOKEN_IN_URL = re.compile(r"(token=)[^&\s\"]*")


def app_command(ws: Workspace, screen: str, allow_actions: bool) -> str:
    """The command each browser session runs: this project's UI, read-only by default."""
    parts = [sys.executable, "-m", "mlyard", "-C", str(ws.project_dir), "--workspace",
             str(ws.root), "tui", "--screen", screen]
    if not allow_actions:
        parts.append("--read-only")
    return shlex.join(parts)


class WebUI(Server):
    """textual-serve's server, with this origin's checks and the token in front of
    every route."""

    def __init__(self, command: str, host: str, port: int, token: str | None,
                 allowed_hosts: tuple[str, ...] = ()) -> None:
        super().__init__(command, host=host, port=port, title="mlyard")
        self.token = token
        # As `mlyard serve` answers: the loopback names, the address bound (unless it is
        # every address) and each --allowed-host; "*" for any.
        self.own_hosts = {*LOOPBACK_NAMES, *allowed_hosts} | (
            set() if host in ("0.0.0.0", "::") else {host})

    def initialize_logging(self) -> None:
        super().initialize_logging()
        logging.getLogger("aiohttp.access").addFilter(_mask_token)

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self._own_origin_only)
        if self.token:
            app.middlewares.append(self._require_token)
        return app

    async def _process_messages(self, websocket: web.WebSocketResponse,
                                app_service: AppService) -> None:
        # The proxy stands in for the service it wraps; only the size is changed.
        await super()._process_messages(websocket, _CappedSize(app_service))  # type: ignore[arg-type]

    @web.middleware
    async def _own_origin_only(self, request: web.Request,
                               handler: Handler) -> web.StreamResponse:
        host = request.headers.get("Host", "")
        if "*" not in self.own_hosts and _name_of(host) not in self.own_hosts:
            return _refused(403, f"this UI answers to {', '.join(sorted(self.own_hosts))} "
                                 "only (--allowed-host NAME for another name)")
        origin = request.headers.get("Origin")
        if origin is not None and origin not in (f"http://{host}", f"https://{host}"):
            return _refused(403, "a page from another site may not use this UI")
        if request.path == "/ws" and not _size_in_bounds(request.query):
            return _refused(400, f"terminal sizes go up to {MAX_COLUMNS}x{MAX_ROWS}")
        return await handler(request)

    @web.middleware
    async def _require_token(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        assert self.token is not None
        given = request.query.get("token") or request.cookies.get(COOKIE) or ""
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return _refused(401, "open this page with ?token=TOKEN (the token `mlyard tui "
                                 "--web` was given)")
        response = await handler(request)
        if "token" in request.query and not response.prepared:
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="Strict")
        return response


class _CappedSize:
    """An app service whose terminal cannot be resized past MAX_COLUMNS x MAX_ROWS, nor
    to anything but whole numbers."""

    def __init__(self, service: AppService) -> None:
        self._service = service

    def __getattr__(self, name: str) -> Any:
        return getattr(self._service, name)

    async def set_terminal_size(self, width: object, height: object) -> None:
        if isinstance(width, int) and isinstance(height, int):
            await self._service.set_terminal_size(max(1, min(width, MAX_COLUMNS)),
                                                  max(1, min(height, MAX_ROWS)))


def _name_of(host: str) -> str:
    """A Host header's name, without its port (`[::1]:8765` -> `[::1]`)."""
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _size_in_bounds(query: Any) -> bool:
    for key, cap in (("width", MAX_COLUMNS), ("height", MAX_ROWS)):
        value = query.get(key, "1")
        if not value.isdigit() or not 0 < int(value) <= cap:
            return False
    return True


def _refused(status: int, reason: str) -> web.Response:
    return web.Response(status=status, text=f"mlyard: {reason}\n")


def _mask_token(record: logging.LogRecord) -> bool:
    record.msg = _TOKEN_IN_URL.sub(r"\1***", str(record.msg))
    if isinstance(record.args, tuple):
        record.args = tuple(_TOKEN_IN_URL.sub(r"\1***", str(arg)) if isinstance(arg, str)
                            else arg for arg in record.args)
    return True
