"""`mlyard tui --web` in a real headless browser: Debian's chromium driven by Playwright.
The terminal is drawn on a canvas, so what the page shows is read from the websocket
frames the app sends it (the text of the screen, between escape sequences)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import httpx
import psutil
import pytest

from tests.conftest import free_port, mlyard, wait_for
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
            wait_for(lambda: newest["run_id"][:8] in shown(),
                     what="the newest run on the dashboard")
            before = len(frames)
            page.mouse.click(600, 400)
            page.keyboard.press("2")
            wait_for(lambda: newest["name"] in shown(before),  # the dashboard shows no names
                     what="the runs screen after pressing 2")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture
def web_ui(trained: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:  # noqa: F811
    """`mlyard tui --web` on loopback without a token (read-only), its output kept."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "mlyard", "tui", "--web", "--port",
                               str(port)], cwd=trained, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for(lambda: _status(url) is not None, what="the web UI to listen")
        yield url, server
    finally:
        server.terminate()
        server.wait(timeout=30)


@needs_browser
def test_a_page_from_another_site_cannot_open_the_ui_session(
        web_ui: tuple[str, subprocess.Popen[str]], tmp_path: Path) -> None:
    """The attack: any page the user visits opens the UI's websocket and presses keys.
    The same page served by the UI's own origin is what the first test shows working."""
    from playwright.sync_api import sync_playwright

    url, _ = web_ui
    socket_url = url.replace("http://", "ws://") + "ws?width=80&height=24"
    (tmp_path / "evil.html").write_text(
        "<script>const ws = new WebSocket(" + json.dumps(socket_url) + ");"
        "ws.onopen = () => { document.title = 'opened'; "
        "ws.send(JSON.stringify(['stdin', '4'])); };"
        "ws.onerror = () => { document.title = 'refused'; };</script>")
    other_site = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                                   str(other_port := free_port())], cwd=tmp_path,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _status(f"http://127.0.0.1:{other_port}/") is not None,
                 what="the other site to listen")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                 args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{other_port}/evil.html")
            page.wait_for_function("document.title !== ''", timeout=60_000)
            assert page.title() == "refused"
            browser.close()
    finally:
        other_site.terminate()
        other_site.wait(timeout=30)


def test_the_ui_refuses_other_origins_other_hosts_and_giant_terminals(
        web_ui: tuple[str, subprocess.Popen[str]]) -> None:
    url, _ = web_ui
    port = url.rsplit(":", 1)[1].strip("/")
    assert httpx.get(url).status_code == 200
    assert httpx.get(url, headers={"Host": f"localhost:{port}"}).status_code == 200
    # A rebound DNS name reaches 127.0.0.1 with its own name as the Host.
    rebound = httpx.get(url, headers={"Host": f"evil.example:{port}"})
    assert rebound.status_code == 403 and "answers to" in rebound.text
    other = httpx.get(url, headers={"Origin": "http://evil.example"})
    assert other.status_code == 403 and "another site" in other.text
    giant = httpx.get(url + "ws?width=100000&height=100000")
    assert giant.status_code == 400 and "1000x400" in giant.text


def test_a_resize_from_the_browser_is_capped(web_ui: tuple[str, subprocess.Popen[str]]) -> None:
    """One resize message of 100000x100000 once grew a session to 10 GB."""
    url, server = web_ui
    asyncio.run(_resize_then_read(url.replace("http://", "ws://") + "ws?width=80&height=24"))
    session = psutil.Process(server.pid).children(recursive=True)
    assert session, "the browser session's mlyard tui process"
    assert sum(child.memory_info().rss for child in session) < 1024 ** 3


async def _resize_then_read(socket_url: str) -> None:
    async with aiohttp.ClientSession() as client, client.ws_connect(socket_url) as ws:
        await _read_until(ws, "Latest runs")
        await ws.send_json(["resize", {"width": 100000, "height": 100000}])
        await ws.send_json(["stdin", "2"])  # redraw at whatever size it now has
        await _read_until(ws, "Compare")  # the runs screen's keys


async def _read_until(ws: aiohttp.ClientWebSocketResponse, text: str) -> None:
    seen = ""
    async with asyncio.timeout(60):
        while text not in ESCAPES.sub("", seen):
            message = await ws.receive()
            if message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                raise AssertionError(f"the session ended before showing {text!r}")
            data = message.data
            seen += data.decode(errors="replace") if isinstance(data, bytes) else str(data)


def test_actions_in_the_browser_need_a_token_and_the_token_is_never_logged(
        trained: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.chdir(trained)
    monkeypatch.delenv("MLYARD_TUI_TOKEN", raising=False)
    refused = mlyard("tui", "--web", "--allow-actions")
    assert refused.exit_code == 2 and "--allow-actions" in refused.stderr
    assert "--token" in refused.stderr
    port, token = free_port(), "s3cret-token-value"
    server = subprocess.Popen([sys.executable, "-m", "mlyard", "tui", "--web", "--port",
                               str(port), "--token", token, "--allow-actions"], cwd=trained,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for(lambda: _status(url) is not None, what="the web UI to listen")
        assert httpx.get(f"{url}?token={token}").status_code == 200
        assert httpx.get(f"{url}?token=wrong").status_code == 401
    finally:
        server.terminate()
        logged, _ = server.communicate(timeout=30)
    assert "token=***" in logged  # the access log is there, the token is not
    assert token not in logged


def test_other_host_names_need_allowed_host_even_with_a_token(
        trained: Path) -> None:  # noqa: F811
    """As `mlyard serve`: a token does not make any Host acceptable (a rebound name
    would reach it); --allowed-host names the ones colleagues use."""
    port, token = free_port(), "a-test-token"
    server = subprocess.Popen([sys.executable, "-m", "mlyard", "tui", "--web", "--port",
                               str(port), "--token", token, "--allowed-host",
                               "models.internal"], cwd=trained,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/?token={token}"
    try:
        wait_for(lambda: _status(url) is not None, what="the web UI to listen")
        named = httpx.get(url, headers={"Host": f"models.internal:{port}"})
        assert named.status_code == 200
        rebound = httpx.get(url, headers={"Host": f"evil.example:{port}"})
        assert rebound.status_code == 403 and "--allowed-host" in rebound.text
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


