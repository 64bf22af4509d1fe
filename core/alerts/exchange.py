"""One POST to a webhook receiver, bounded in time and size whatever the receiver does.

A receiver is a stranger. Socket timeouts bound each read, not the exchange: a receiver
that drips a byte every two seconds keeps `urllib` waiting forever, and one that sends a
200 kB header line or 200 headers makes it raise errors outside `OSError`. So the whole
exchange (connect, TLS, request, status, headers, body) runs under one deadline, after
which a timer shuts the socket, and every way it can go wrong becomes one line.
Redirects are not followed: a receiver cannot send the alert (and its URL's secrets)
somewhere else.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import urllib.parse
import urllib.request

ANSWER_CAP = 65536  # bytes of a receiver's body read; the rest is never read


class ExchangeFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def post(url: str, body: bytes, headers: dict[str, str], deadline: float) -> int:
    """POST `body` to `url` and return the answer's status, all within `deadline`
    seconds; raises ExchangeFailed with one line otherwise."""
    connection, target = _connection(url, deadline)
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        if connection.sock is not None:
            try:
                connection.sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked read
            except OSError:
                pass

    timer = threading.Timer(deadline, expire)
    timer.daemon = True
    timer.start()
    try:
        connection.connect()
        if expired.is_set():  # the deadline passed while connecting
            raise TimeoutError
        connection.request("POST", target, body=body, headers=headers)
        answer = connection.getresponse()
        answer.read(ANSWER_CAP)
        if expired.is_set():  # cut off mid-answer: what arrived may parse, but is not it
            raise TimeoutError
        return answer.status
    except (http.client.HTTPException, OSError, ValueError) as exc:
        if expired.is_set() or isinstance(exc, TimeoutError):
            raise ExchangeFailed(f"no answer within {deadline:g}s") from None
        raise ExchangeFailed(_describe(exc)) from None
    finally:
        timer.cancel()
        connection.close()


def _connection(url: str, deadline: float) -> tuple[http.client.HTTPConnection, str]:
    """The connection for `url` (through the environment's proxy, as urllib would) and
    the request target."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ExchangeFailed("not an http or https URL")
    try:
        port = parts.port
    except ValueError:
        raise ExchangeFailed("its port is not a number") from None
    secure = parts.scheme == "https"
    kind = http.client.HTTPSConnection if secure else http.client.HTTPConnection
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    proxy = urllib.request.getproxies().get(parts.scheme)
    if not proxy or urllib.request.proxy_bypass(parts.hostname):
        return kind(parts.hostname, port, timeout=deadline), target
    via = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if secure:  # a CONNECT tunnel: the proxy never sees the path
        connection = http.client.HTTPSConnection(via.hostname or "", via.port,
                                                 timeout=deadline)
        connection.set_tunnel(parts.hostname, port)
        return connection, target
    return http.client.HTTPConnection(via.hostname or "", via.port, timeout=deadline), url


def _describe(exc: BaseException) -> str:
    """One line for what went wrong, never the receiver's own bytes (they may hold
    anything, escape codes included)."""
    if isinstance(exc, http.client.LineTooLong):
        return "a broken answer: a line longer than 64 KiB"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "it closed the connection without answering"
    if isinstance(exc, http.client.BadStatusLine):
        return "a broken answer: not an HTTP status line"
    if isinstance(exc, http.client.IncompleteRead):
        return "a broken answer: the body was cut short or badly chunked"
    if isinstance(exc, http.client.HTTPException):
        return "a broken answer: " + ("too many headers" if "headers" in str(exc)
                                      else "malformed")
    if isinstance(exc, ConnectionRefusedError):
        return "cannot reach it: connection refused"
    if isinstance(exc, socket.gaierror):
        return "cannot reach it: unknown host"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or type(exc).__name__}"
    if isinstance(exc, OSError):
        return f"cannot reach it: {exc.strerror or type(exc).__name__}"
    return f"a broken answer: {type(exc).__name__}"
