"""Where alerts go: a webhook (a JSON POST) or a command (the JSON on its standard input).

Both fail with one line saying why (`DeliveryFailed`), which is recorded as the attempt's
error and shown by `mlyard alerts` and the Monitoring screen.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from importlib import metadata
from typing import Protocol

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
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json",
            "User-Agent": f"mlyard/{metadata.version('mlyard')}"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                answer.read(65536)
        except urllib.error.HTTPError as exc:
            raise DeliveryFailed(self._scrub(f"HTTP {exc.code} {exc.reason}")) from None
        except urllib.error.URLError as exc:
            raise DeliveryFailed(self._scrub(f"cannot reach it: {exc.reason}")) from None
        except TimeoutError:
            raise DeliveryFailed(f"no answer within {timeout:g}s") from None
        except (OSError, ValueError) as exc:  # a malformed URL, a broken answer
            raise DeliveryFailed(self._scrub(f"{type(exc).__name__}: {exc}")) from None

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
        try:
            done = subprocess.run(self.words, input=body, capture_output=True, timeout=timeout,
                                  env={**os.environ, "MLYARD_ALERT_TEXT": text}, check=False)
        except FileNotFoundError:
            raise DeliveryFailed(f"{self.words[0]}: no such program") from None
        except PermissionError:
            raise DeliveryFailed(f"{self.words[0]}: not executable") from None
        except subprocess.TimeoutExpired:
            raise DeliveryFailed(f"still running after {timeout:g}s; stopped") from None
        if done.returncode != 0:
            said = done.stderr.decode(errors="replace").strip().splitlines()
            raise DeliveryFailed(f"exit status {done.returncode}"
                                 + (f": {said[-1][:300]}" if said else ""))


def receivers(config: AlertsConfig) -> list[Receiver]:
    """The configured receivers, webhooks first (config.py checked their values)."""
    found: list[Receiver] = [Webhook(url, number)
                             for number, url in enumerate(config.webhooks, start=1)]
    if config.command:
        found.append(Command(tuple(shlex.split(config.command))))
    return found
