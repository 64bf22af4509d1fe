"""Receivers cannot hurt the sender: real TCP servers on 127.0.0.1 that answer with a
huge header line, 200 headers, a bad status line, a bad chunk, a byte every half second,
or nothing at all, beside one that answers well. Each command still ends with its own
outcome, every failure is an attempt on record, and the good receiver hears once."""

from __future__ import annotations

import json
import shlex
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import mlyard, wait_for
from tests.test_alerts import attempts, configure, refuse_a_file

HOSTILE = {
    "huge-header": b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n",
    "many-headers": b"HTTP/1.1 200 OK\r\n" + b"".join(
        b"X-H%d: v\r\n" % n for n in range(200)) + b"\r\n",
    "bad-status": b"\x1b[31mNOT HTTP[/]\r\n\r\n",
    "bad-chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZ-not-hex\r\n",
}


class HostileReceivers:
    """One server; the request path picks the behaviour. `/ok` answers 204 and keeps
    the bodies, `/drip` sends a byte every 0.5 s for as long as the sender listens,
    `/never` reads the request and says nothing."""

    def __init__(self) -> None:
        self.received: list[dict[str, object]] = []
        self.stop = threading.Event()
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                path, body = _read_request(self.request)
                name = path.strip("/")
                if name == "ok":
                    outer.received.append(json.loads(body))
                    self.request.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
                elif name == "drip":
                    self.request.sendall(b"HTTP/1.1 200 OK\r\n")
                    while not outer.stop.wait(0.5):
                        try:
                            self.request.sendall(b"X")
                        except OSError:
                            return
                elif name == "never":
                    outer.stop.wait(120)
                else:
                    self.request.sendall(HOSTILE[name])

        socketserver.ThreadingTCPServer.daemon_threads = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


def _read_request(sock: socket.socket) -> tuple[str, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    length = next(int(line.split(":")[1]) for line in lines
                  if line.lower().startswith("content-length"))
    while len(body) < length:
        body += sock.recv(65536)
    return lines[0].split()[1], body


@pytest.fixture
def hostile() -> Iterator[HostileReceivers]:
    running = HostileReceivers()
    yield running
    running.close()


def test_hostile_receivers_never_change_a_commands_outcome_and_each_failure_is_recorded(
        churn_project: Path, good_csv: str, hostile: HostileReceivers) -> None:
    names = [*HOSTILE, "drip", "never", "ok"]
    urls = ", ".join(f'"{hostile.url}/{name}"' for name in names)
    configure(churn_project, f'webhooks = [{urls}]\ntimeout = "2s"\nretries = 2\n'
                             'backoff = "1h"\nwait = "1s"')
    refuse_a_file(churn_project, good_csv)  # exit 1 for the refusal, not for the receivers
    listing = [mlyard("runs", "list", "--json") for _ in range(3)]
    for result in listing:
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout) == []
        assert "Traceback" not in result.stderr
    # Sent once to the receiver that answers, however many commands ran after it.
    assert len(hostile.received) == 1 and hostile.received[0]["kind"] == "refused"
    recorded = {receiver: (number, outcome) for receiver, number, outcome
                in attempts(churn_project)}
    assert len(recorded) == len(names)
    by_place = {int(receiver.split()[1]): result for receiver, result in recorded.items()}
    assert by_place[len(names)] == (1, "delivered")
    assert [by_place[place] for place in range(1, len(names))] == \
        [(1, "failed")] * (len(names) - 1)
    [alert] = json.loads(mlyard("alerts", "--json").stdout)
    detail = alert["delivery_detail"]
    for reason in ("a line longer than 64 KiB", "too many headers",
                   "not an HTTP status line", "badly chunked", "no answer within 2s"):
        assert reason in detail, (reason, detail)
    assert "NOT HTTP" not in detail and "\x1b" not in detail  # their bytes are never shown


def test_a_dripping_receiver_is_cut_off_at_the_deadline(
        churn_project: Path, good_csv: str, hostile: HostileReceivers) -> None:
    configure(churn_project, f'webhooks = ["{hostile.url}/drip"]\ntimeout = "1s"\n'
              'retries = 0')
    started = time.monotonic()
    result = mlyard("alerts", "test")
    took = time.monotonic() - started
    assert result.exit_code == 1 and "no answer within 1s" in result.stdout + result.stderr
    # Far below what a per-read timeout allows a drip (forever); generous for a busy box.
    assert took < 30


def test_a_command_that_leaves_a_child_running_is_delivered_and_an_overrun_is_stopped(
        churn_project: Path, tmp_path: Path) -> None:
    marker = tmp_path / "child.pid"
    background = shlex.join(["sh", "-c", f"sleep 300 & echo $! > {marker}; exit 0"])
    configure(churn_project, f"command = {json.dumps(background)}\ntimeout = \"20s\"")
    result = mlyard("alerts", "test")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "delivered" in result.stdout
    child = int(marker.read_text())
    subprocess.run(["kill", str(child)], check=False)

    overrun = shlex.join(["sh", "-c", f"sleep 300 & echo $! > {marker}; sleep 300"])
    config = churn_project / "mlyard.toml"
    config.write_text(config.read_text().replace(json.dumps(background), json.dumps(overrun))
                      .replace('timeout = "20s"', 'timeout = "1s"'))
    marker.unlink()
    result = mlyard("alerts", "test")
    assert result.exit_code == 1
    assert "still running after 1s; stopped" in result.stdout + result.stderr
    stopped = int(marker.read_text())
    # Stopped with everything it started: its background child is gone too.
    wait_for(lambda: not _running(stopped), what="the overrunning command's child to end")


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
