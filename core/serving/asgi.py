"""The few ASGI pieces the server's hot path is written with, instead of a framework's
request and response objects (which cost as much as scoring a row did)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = Sequence[tuple[bytes, bytes]]

JSON = b"application/json"


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of a request header (servers hand names over in lower case)."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def respond(send: Send, status: int, body: bytes, headers: Headers = (),
                  content_type: bytes = JSON) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type),
                            (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


def error_body(message: str, code: str) -> bytes:
    """MLflow's error shape: `{"error_code": ..., "message": ...}`."""
    return orjson.dumps({"error_code": code, "message": message})
