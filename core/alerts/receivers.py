"""Where alerts go: a webhook (a JSON POST) or a command (the JSON on its standard input).

Both fail with one line saying why (`DeliveryFailed`), which is recorded as the attempt's
error and shown by `mlyard alerts` and the Monitoring screen.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import tempfile
import urllib.parse
from dataclasses import dataclass
from importlib import metadata
from typing import Protocol

from mlyard.core.alerts.exchange import ExchangeFailed, post
from mlyard.core.config import AlertsConfig


class DeliveryFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Receiver(Protocol):
    @property
    def name(self) -> str: ...

    def send(self, body: bytes, text: str, timeout: float) -> None: ...


@dataclass(frozen=True)
class Webhook:
    """A URL that takes the alert as a JSON POST; any 2xx answer is delivered."""

    url: str
    number: int  # its place in [alerts] webhooks, from 1

    @property
    def name(self) -> str:
        # Never the whole URL: a user and password, a path or a query may be the secret
        # (chat webhooks carry theirs in the path). The full URL is in the config only.
        parts = urllib.parse.urlsplit(self.url)
        port = f":{parts.port}" if _port(parts) else ""
        return f"webhook {self.number} ({parts.hostname or '?'}{port})"

    def send(self, body: bytes, text: str, timeout: float) -> None:
        headers = {"Content-Type": "application/json",
                   "User-Agent": f"mlyard/{metadata.version('mlyard')}"}
        try:
            status = post(self.url, body, headers, timeout)
        except ExchangeFailed as failed:
            raise DeliveryFailed(self._scrub(failed.reason)) from None
        if not 200 <= status < 300:
            raise DeliveryFailed(f"HTTP {status}"
                                 + (" (redirects are not followed)" if 300 <= status < 400
                                    else ""))

    def _scrub(self, text: str) -> str:
        """An error as it may be shown: every secret-bearing part of the URL masked."""
        parts = urllib.parse.urlsplit(self.url)
        secrets = [self.url, parts.netloc, parts.username, parts.password, parts.path,
                   parts.query]
        for secret in sorted({s for s in secrets if s and len(s) > 1}, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text[:300]


def _port(parts: urllib.parse.SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:  # a port that is not a number: shown as no port
        return None


@dataclass(frozen=True)
class Command:
    """A program run without a shell, with the alert as JSON on standard input and its
    line in MLYARD_ALERT_TEXT; exit status 0 is delivered."""

    words: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"command {os.path.basename(self.words[0])}"

    def send(self, body: bytes, text: str, timeout: float) -> None:
        # Its output goes to a file, not a pipe: a child it leaves in the background keeps
        # a pipe open and would make a finished command look hung. Its own session lets a
        # command that overruns be stopped with everything it started.
        with tempfile.TemporaryFile() as said:
            try:
                process = subprocess.Popen(
                    self.words, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                    stderr=said, start_new_session=True,
                    env={**os.environ, "MLYARD_ALERT_TEXT": text})
            except FileNotFoundError:
                raise DeliveryFailed(f"{self.words[0]}: no such program") from None
            except PermissionError:
                raise DeliveryFailed(f"{self.words[0]}: not executable") from None
            try:
                process.communicate(body, timeout=timeout)
            except subprocess.TimeoutExpired:
                _stop_group(process)
                raise DeliveryFailed(f"still running after {timeout:g}s; stopped") from None
            if process.returncode != 0:
                said.seek(0)
                lines = said.read(65536).decode(errors="replace").strip().splitlines()
                raise DeliveryFailed(f"exit status {process.returncode}"
                                     + (f": {lines[-1][:300]}" if lines else ""))


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
    process.wait()


def receivers(config: AlertsConfig) -> list[Receiver]:
    """The configured receivers, webhooks first (config.py checked their values)."""
    found: list[Receiver] = [Webhook(url, number)
                             for number, url in enumerate(config.webhooks, start=1)]
    if config.command:
        found.append(Command(tuple(shlex.split(config.command))))
    return found
