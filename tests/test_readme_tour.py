"""The README's tour, line by line, in a fresh copy of the sample project: each command
exits 0 and prints the quoted words its comment promises. This breaks when the README
and the CLI drift apart."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import REPO, free_port, wait_for

TOUR = re.compile(r"## A quick tour.*?```sh\n(.*?)```", re.DOTALL)


def tour_lines() -> list[tuple[str, list[str]]]:
    """(command, quoted words its comment promises) for every line of the tour."""
    block = TOUR.search((REPO / "README.md").read_text())
    assert block, "README.md has no tour block"
    lines = []
    for line in block.group(1).splitlines():
        command, _, comment = line.partition("  # ")
        lines.append((command.strip(), re.findall(r'"([^"]+)"', comment)))
    return lines


def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    """Each line once, in order, with no wait of the test's own: `serve --detach` returns
    once the server answers, and its prediction log is written before the next line."""
    copy, port = tmp_path / "churn", free_port()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "COLUMNS": "120"}
    # The README's first command, in this checkout, before the tour as a reader runs it:
    # it must leave sample_data/ as shipped, since the tour copies it.
    shipped = sorted(p.relative_to(REPO) for p in (REPO / "sample_data").rglob("*"))
    made = subprocess.run(["make", "run"], cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=600)
    assert made.returncode == 0, made.stdout + made.stderr
    assert "finished" in made.stdout  # ends showing the run it trained
    assert sorted(p.relative_to(REPO) for p in (REPO / "sample_data").rglob("*")) == shipped
    cwd = REPO
    try:
        for command, promised in tour_lines():
            command = command.replace("/tmp/churn", str(copy)).replace("5005", str(port))
            if command.startswith(". "):
                continue  # activating the venv: PATH above does it
            done = subprocess.run(command, shell=True, cwd=cwd, env=env, capture_output=True,
                                  text=True, timeout=600)
            shown = done.stdout + done.stderr
            assert done.returncode == 0, f"{command}\n{shown}"
            for words in promised:
                assert words in shown, f"{command}: README promises {words!r}\n{shown}"
            if "&& cd " in command:
                cwd = Path(command.rsplit("&& cd ", 1)[1].strip())
        wait_for(lambda: not _answers(port), timeout=30, what="the server to stop after `kill`")
    finally:
        pid_file = copy / ".mlyard" / f"serve-{port}.pid"
        if pid_file.exists() and _answers(port):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
