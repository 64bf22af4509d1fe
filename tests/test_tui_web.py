"""`mlyard tui --web` in a real headless browser: Debian's chromium driven by Playwright.
The terminal is drawn on a canvas, so what the page shows is read from the websocket
frames the app sends it (the text of the screen, between escape sequences)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import mlyard, wait_for
from tests.test_serve import trained  # noqa: F401  # the module's project

CHROMIUM = Path("/usr/bin/chromium")
# What this machine's closed network needs (docs: the machine's notes on Chromium).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
ESCAPES = re.compile(r"\x1b\[[0-9;?$]*[a-zA-Z]|\x1b\][^\x07]*\x07")

needs_browser = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("MLYARD_REQUIRE_BROWSER"),
    reason="no /usr/bin/chromium (apt-get install chromium; CI installs it and sets "
           "MLYARD_REQUIRE_BROWSER so this never skips there)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@needs_browser
def test_the_ui_in_a_browser_shows_the_runs_and_switches_screens(trained: Path) -> None:  # noqa: F811
    from playwright.sync_api import sync_playwright

    port, token = free_port(), "a-test-token"
    server = subprocess.Popen([sys.executable, "-m", "mlyard", "tui", "--web", "--port",
                               str(port), "--token", token], cwd=trained,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for(lambda: _status(url) is not None, what="the web UI to listen")
        assert _status(url) == 401  # no token, no page
        newest = json.loads(mlyard_in(trained, "runs", "list", "--json"))[0]
        frames: list[str] = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                 args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(
                payload.decode(errors="replace") if isinstance(payload, bytes) else payload)))
            page.goto(f"{url}?token={token}")

            def shown(since: int = 0) -> str:
                page.wait_for_timeout(100)  # lets Playwright deliver the frames
                return ESCAPES.sub("", "".join(frames[since:]))

            # the heading comes first; the rows follow when the dashboard's worker has read
            # the catalog, which on a busy machine can be a while later
            _until(lambda: newest["run_id"][:8] in shown(), "the newest run on the dashboard")
            before = len(frames)
            page.mouse.click(600, 400)
            page.keyboard.press("2")
            _until(lambda: newest["name"] in shown(before),  # the dashboard shows no names
                   "the runs screen after pressing 2")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_web_ui_beyond_loopback_needs_a_token(trained: Path,  # noqa: F811
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(trained)
    monkeypatch.delenv("MLYARD_TUI_TOKEN", raising=False)
    refused = mlyard("tui", "--web", "--host", "0.0.0.0")
    assert refused.exit_code == 2
    assert "--host 0.0.0.0 shows this project beyond this machine: pass --token" in \
        refused.stderr


def mlyard_in(project: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "mlyard", *args], cwd=project,
                          capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


def _status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return None


def _until(condition, what: str, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    """wait_for for a browser page: the condition itself lets Playwright run."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not seen in {timeout:.0f} s: {what}"
