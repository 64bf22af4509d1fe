"""`mlyard serve --detach`: a server that outlives the command that started it, returned
to the shell only once it answers, so the next line of a script (a `curl`, `feedback`)
never races it."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlyard.core.errors import MlyardError, UsageError
from mlyard.core.processes import mlyard_command
from mlyard.core.workspace import Workspace

READY_TIMEOUT = 60.0  # loading a large model and its reference can take a while
# Our own server is asked directly, never through an HTTP proxy from the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class DetachedServer:
    pid: int
    url: str  # where it answers, e.g. http://127.0.0.1:5005
    log: Path  # its stderr: the start line, warnings, the reason it stopped
    pid_file: Path  # for scripts: `kill $(cat .mlyard/serve-5005.pid)`


def reach(host: str) -> str:
    """The address this machine reaches a server bound to `host` at (any: loopback)."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def local_url(host: str, port: int) -> str:
    address = reach(host)
    return f"http://{f'[{address}]' if ':' in address else address}:{port}"


def get_local(url: str, timeout: float) -> str:
    """The body of a 200 answer from our own server (the standard library's client:
    `mlyard` installs no HTTP client of its own), asked directly."""
    with _DIRECT.open(url, timeout=timeout) as answer:
        body: bytes = answer.read()
    return body.decode()


def wait_answering(url: str, exited: Callable[[], str | None],
                   timeout: float = READY_TIMEOUT) -> None:
    """Return once `url`/ping answers; raise with the server's last words if it exits
    first (`exited` gives them, or None while it runs) or stays silent past `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last_words = exited()
        if last_words is not None:
            raise MlyardError(f"the server exited: {last_words or '?'}")
        try:
            get_local(f"{url}/ping", timeout=1)
            return
        except OSError:  # not listening yet (urllib's errors are OSErrors)
            time.sleep(0.05)
    raise MlyardError(f"the server did not answer {url}/ping within {timeout:g}s")


def serve_detached(ws: Workspace, serve_args: list[str], host: str, port: int,
                   timeout: float = READY_TIMEOUT) -> DetachedServer:
    """Start `mlyard serve SERVE_ARGS` in a session of its own (a closed terminal or a
    Ctrl-C in the shell does not stop it; `kill PID` does) and wait until it answers."""
    ws.check_writable("start a server")
    url = local_url(host, port)
    if _taken(reach(host), port):
        raise UsageError(f"port {port} on {host} is already in use (another server?); "
                         "choose another with --port")
    log_path = ws.root / "logs" / f"serve-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        start = log.tell()
        process = subprocess.Popen(
            mlyard_command("--workspace", str(ws.root), "serve", *serve_args),
            cwd=ws.project_dir, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True)

    def exited() -> str | None:
        if process.poll() is None:
            return None
        with log_path.open("rb") as log:
            log.seek(start)
            lines = log.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else ""

    try:
        wait_answering(url, exited, timeout)
    except MlyardError:
        if process.poll() is None:
            process.kill()
        raise
    pid_file = ws.root / f"serve-{port}.pid"
    pid_file.write_text(f"{process.pid}\n")
    return DetachedServer(process.pid, url, log_path, pid_file)


def _taken(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False
