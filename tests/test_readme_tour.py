"""The README's tour, line by line, in a fresh copy of the sample project: each command
exits 0 and prints the quoted words its comment promises. This breaks when the README
and the CLI drift apart."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import REPO, wait_for

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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    copy, port = tmp_path / "churn", free_port()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "COLUMNS": "120"}
    cwd, server = REPO, None
    try:
        for command, promised in tour_lines():
            command = command.replace("/tmp/churn", str(copy)).replace("5005", str(port))
            if command.startswith(". "):
                continue  # activating the venv: PATH above does it
            if command.endswith("&"):
                server = subprocess.Popen(shlex.split(command[:-1]), cwd=cwd, env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                wait_for(lambda: _answers(port), what=f"{command} to answer /ping")
                continue
            if command == "kill %1":
                assert server is not None
                server.terminate()
                assert server.wait(timeout=30) in (0, -15)  # stopped, by itself or the signal
                server = None
                continue
            run = _runner(command, cwd, env, promised)
            # The server writes its prediction log every second; a person typing the
            # next command is slower than that, so while it runs, wait as they would.
            try:
                wait_for(run, timeout=30 if server else 0, what=command)
            except AssertionError:
                run(final=True)  # says what is missing
            if "&& cd " in command:
                cwd = Path(command.rsplit("&& cd ", 1)[1].strip())
    finally:
        if server is not None:
            server.kill()


def _runner(command: str, cwd: Path, env: dict[str, str], promised: list[str]):  # type: ignore[no-untyped-def]
    """Run the line; with `final`, assert it exited 0 and printed what it promises."""
    def run(final: bool = False) -> bool:
        done = subprocess.run(command, shell=True, cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=600)
        shown = done.stdout + done.stderr
        if not final:
            return done.returncode == 0 and all(words in shown for words in promised)
        assert done.returncode == 0, f"{command}\n{shown}"
        for words in promised:
            assert words in shown, f"{command}: README promises {words!r}\n{shown}"
        return True
    return run


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
