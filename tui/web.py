"""`mlyard tui --web`: the same terminal UI in a browser, served by textual-serve.

Each browser tab gets its own `mlyard tui` process on this project, read-only unless
the server was started with `--allow-actions`. Beyond loopback a token is required: the
first visit carries it as `?token=...`, which sets an HTTP-only cookie for the page's
websocket and later loads; a wrong or missing token is a 401.
"""

from __future__ import annotations

import hmac
import shlex
import sys
from collections.abc import Awaitable, Callable

from aiohttp import web
from textual_serve.server import Server

from mlyard.core.workspace import Workspace

COOKIE = "mlyard_token"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def app_command(ws: Workspace, screen: str, allow_actions: bool) -> str:
    """The command each browser session runs: this project's UI, read-only by default."""
    parts = [sys.executable, "-m", "mlyard", "-C", str(ws.project_dir), "--workspace",
             str(ws.root), "tui", "--screen", screen]
    if not allow_actions:
        parts.append("--read-only")
    return shlex.join(parts)


class WebUI(Server):
    """textual-serve's server, with the token check in front of every route."""

    def __init__(self, command: str, host: str, port: int, token: str | None) -> None:
        super().__init__(command, host=host, port=port, title="mlyard")
        self.token = token

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        if self.token:
            app.middlewares.append(self._require_token)
        return app

    @web.middleware
    async def _require_token(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        assert self.token is not None
        given = request.query.get("token") or request.cookies.get(COOKIE) or ""
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return web.Response(status=401, text="mlyard: open this page with ?token=TOKEN "
                                                 "(the token `mlyard tui --web` was given)\n")
        response = await handler(request)
        if "token" in request.query and not response.prepared:
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="Strict")
        return response
