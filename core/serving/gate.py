"""The server's front door: the Host header and the bearer token, checked for every path
before anything else runs, then scoring to its own handler and the rest to the routes."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Any

from mlyard.core.serving.asgi import App, Receive, Scope, Send, error_body, header, respond

OPEN_PATHS = {"/ping", "/health"}  # liveness probes answer without a token


class Gate:
    """Refuses a foreign Host (DNS rebinding: a page elsewhere that resolves its own name
    to 127.0.0.1 gets 400 instead of reaching a tokenless local server) and, with a token,
    any path but the liveness probes without `Authorization: Bearer <token>` (401).

    `state` is the routes' state, so the server's parts stay reachable from the app.
    """

    def __init__(self, routes: Any, invocations: App, hosts: Sequence[str],
                 token: str | None) -> None:
        self.routes = routes
        self.state = routes.state
        self.invocations = invocations
        self.any_host = "*" in hosts
        self.hosts = frozenset(h for h in hosts if not h.startswith("*"))
        self.suffixes = tuple(h[1:] for h in hosts if h.startswith("*") and h != "*")
        self.expected = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # the lifespan
            await self.routes(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            status, message, code = refusal
            await respond(send, status, error_body(message, code))
        elif scope["path"] == "/invocations":
            await self.invocations(scope, receive, send)
        else:
            await self.routes(scope, receive, send)

    def _refusal(self, scope: Scope) -> tuple[int, str, str] | None:
        if not self.any_host:
            host = (header(scope, b"host") or b"").decode("latin-1")
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name not in self.hosts and not name.endswith(self.suffixes or ("\0",)):
                return (400, f"Host {host!r} is not a name this server answers to (pass "
                             "--allowed-host NAME to answer to it)", "BAD_REQUEST")
        if self.expected is not None and scope["path"] not in OPEN_PATHS:
            scheme, _, given = (header(scope, b"authorization") or b"").partition(b" ")
            # The scheme is case-insensitive (RFC 9110); the comparison takes the same time
            # however much of the token is right.
            if scheme.lower() != b"bearer" or not hmac.compare_digest(given.strip(),
                                                                       self.expected):
                return 401, "missing or wrong bearer token", "UNAUTHENTICATED"
        return None
