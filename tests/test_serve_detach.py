"""`mlyard serve --detach`: back once the server answers, the server outliving the command;
a port already taken, a bad model or a server that dies at start are one line and no
process left behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from mlyard.core.processes import pid_alive
from tests.conftest import free_port, wait_for
from tests.test_serve import trained  # noqa: F401  (the fixture)


def detach(project: Path, *args: str, env: dict[str, str] | None = None) -> \
        subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlyard", "serve", *args, "--detach"],
                          cwd=project, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_detach_returns_once_the_server_answers_and_leaves_it_running(trained: Path) -> None:  # noqa: F811
    port = free_port()
    # A proxy in the environment (where nothing listens) is not asked for our own server.
    done = detach(trained, "churn@champion", "--port", str(port),
                  env={"MLYARD_SERVE_TOKEN": "s3cret", "http_proxy": "http://127.0.0.1:9",
                       "HTTP_PROXY": "http://127.0.0.1:9"})
    assert done.returncode == 0, done.stderr
    pid = int((trained / ".mlyard" / f"serve-{port}.pid").read_text())
    try:
        assert f"pid {pid}" in done.stdout and f"http://127.0.0.1:{port}/invocations" \
            in done.stdout
        # Answering now, with no wait: the command returned only once it did.
        rows = {"dataframe_split": {"columns": ["tenure_months"], "data": [[3]]}}
        answer = httpx.post(f"http://127.0.0.1:{port}/invocations", json=rows,
                            headers={"Authorization": "Bearer s3cret"})
        assert answer.status_code in (200, 400), answer.text  # served, token accepted
        refused = httpx.post(f"http://127.0.0.1:{port}/invocations", json=rows)
        assert refused.status_code == 401
        # The token went by the environment: it is not on the server's command line.
        assert b"s3cret" not in Path(f"/proc/{pid}/cmdline").read_bytes()
        assert os.getsid(pid) == pid  # a session of its own: a closed terminal spares it
        again = detach(trained, "churn@champion", "--port", str(port))
        assert again.returncode != 0
        assert f"port {port}" in again.stderr and "already in use" in again.stderr
        assert len(again.stderr.strip().splitlines()) == 1
    finally:
        os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not pid_alive(pid), timeout=30, what="the server to stop")


def test_a_bad_model_or_a_server_that_dies_at_start_is_one_line(trained: Path) -> None:  # noqa: F811
    port = free_port()
    bad = detach(trained, "churn@nobody", "--port", str(port))
    assert bad.returncode != 0 and "nobody" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    # Something else takes the port between the check and the bind: uvicorn's own
    # reason comes back, not a wait until the timeout.
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        taken = blocker.getsockname()[1]
        dies = detach(trained, "churn@champion", "--port", str(taken))
    assert dies.returncode != 0
    assert "the server exited" in dies.stderr, dies.stderr
    assert not (trained / ".mlyard" / f"serve-{taken}.pid").exists()


@pytest.fixture(autouse=True)
def _no_stray_servers(trained: Path) -> None:  # noqa: F811
    """Every test here stops what it starts (the pid files say what was started)."""
    for pid_file in (trained / ".mlyard").glob("serve-*.pid"):
        pid_file.unlink()
