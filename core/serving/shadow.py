"""A shadow model: a second version that scores every request the champion answered,
after the answer has gone out, so it can be judged on live traffic before it serves.

The shadow scores in its own process (`shadow_worker`): parsing and scoring a request
is Python work, and in the server's process it would hold the interpreter lock while the
champion's requests wait (measured: +27% on the champion's single-row p99 at a steady
load, bench/bench_shadow.py). Here the server only queues the answered request (a
bounded queue; when it is full the request is dropped and counted, never waited for) and
one thread writes it to the worker's standard input. A worker that dies (a model that
aborts LightGBM, say) takes nothing down with it: the server keeps answering and says so
in /health. A worker that stops reading is "stuck" in /health after STUCK_AFTER seconds,
and a stopping server gives it STOP_GRACE seconds, then kills it: SIGTERM ends `mlyard
serve` within seconds whatever the worker does.
"""

from __future__ import annotations

import logging
import os
import queue
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import IO

import orjson

from mlyard.core.workspace import Workspace

log = logging.getLogger("mlyard.serve")

QUEUE_SIZE = 1024  # answered requests waiting for the worker; more are dropped and counted
# ... and their bodies together, so a worker that stops reading cannot make the server
# hold a thousand large bodies (1,024 x 10 MB) in memory.
QUEUE_BYTES = 64 * 2**20
STUCK_AFTER = 10.0  # seconds a write to the worker may block before it counts as stuck
STOP_GRACE = 5.0  # seconds the worker gets to score what is queued when the server stops
SEND_EVERY = 0.02  # seconds between batches written to the worker
READY_TIMEOUT = 120.0  # seconds for the worker to load its model and say so
_LENGTH = struct.Struct(">II")  # a frame: header length, body length, header, body


@dataclass(frozen=True)
class Answered:
    """A request the champion answered, as the shadow needs it."""

    request_id: str
    ts: float
    body: bytes
    content_type: str
    model: str
    champion_version: int
    rows: int
    champion_outputs: str  # JSON, as answered
    champion_seconds: float


def frame(answered: Answered) -> bytes:
    header = orjson.dumps({"request_id": answered.request_id, "ts": answered.ts,
                           "content_type": answered.content_type, "model": answered.model,
                           "champion_version": answered.champion_version,
                           "rows": answered.rows, "champion_outputs": answered.champion_outputs,
                           "champion_seconds": answered.champion_seconds})
    return _LENGTH.pack(len(header), len(answered.body)) + header + answered.body


def read_frame(stream: IO[bytes]) -> tuple[dict[str, object], bytes] | None:
    """The next answered request from `stream`, or None at its end."""
    lengths = stream.read(_LENGTH.size)
    if len(lengths) < _LENGTH.size:
        return None
    header_length, body_length = _LENGTH.unpack(lengths)
    header = orjson.loads(stream.read(header_length))
    return header, stream.read(body_length)


class Shadow:
    """The server's side of a shadow: the queue, the writer thread and the worker."""

    def __init__(self, ws: Workspace, ref: str, poll_interval: float = 1.0,
                 queue_size: int = QUEUE_SIZE, queue_bytes: int = QUEUE_BYTES) -> None:
        self.ws = ws
        self.ref = ref
        self.poll_interval = poll_interval
        self.dropped = 0  # requests the worker was too far behind (or gone) to take
        self.scored = 0  # as the worker last reported
        self.failed = 0  # requests it could not score, as it last reported
        self.version: int | None = None  # the version it scores with, as it last reported
        self.alive = False
        self._queue: queue.Queue[Answered | None] = queue.Queue(queue_size)
        self._queue_bytes = queue_bytes
        self._queued_bytes = 0  # bodies waiting in the queue (under _bytes_guard)
        self._bytes_guard = threading.Lock()
        self._writing_since: float | None = None  # a write to the worker in progress
        self._worker: subprocess.Popen[bytes] | None = None
        self._ready = threading.Event()
        self._stopping = False
        self._threads: list[threading.Thread] = []

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    @property
    def stuck(self) -> bool:
        """The worker has not taken what was written to it for STUCK_AFTER seconds."""
        since = self._writing_since
        return since is not None and time.monotonic() - since > STUCK_AFTER

    def offer(self, answered: Answered) -> None:
        size = len(answered.body)
        with self._bytes_guard:
            if self._queued_bytes + size > self._queue_bytes:
                self.dropped += 1
                return
            self._queued_bytes += size
        try:
            self._queue.put_nowait(answered)
        except queue.Full:
            with self._bytes_guard:
                self._queued_bytes -= size
            self.dropped += 1

    def start(self) -> None:
        """Start the worker and wait until it has loaded its model."""
        reports_read, reports_write = os.pipe()
        self._worker = subprocess.Popen(
            [sys.executable, "-m", "mlyard.core.serving.shadow_worker", str(self.ws.root),
             str(self.ws.config_path), self.ref, str(self.poll_interval), str(reports_write)],
            stdin=subprocess.PIPE, pass_fds=(reports_write,))
        os.close(reports_write)
        self.alive = True
        self._threads = [
            threading.Thread(target=self._send, name="mlyard-shadow-send", daemon=True),
            threading.Thread(target=self._listen, args=(os.fdopen(reports_read, "rb"),),
                             name="mlyard-shadow-reports", daemon=True)]
        for thread in self._threads:
            thread.start()
        if not self._ready.wait(READY_TIMEOUT) or not self.alive:
            log.error("shadow %s did not start; serving without it", self.ref)

    def stop(self) -> None:
        """Let the worker score what is queued for up to STOP_GRACE seconds, then end
        it, killed if it has not ended by then."""
        if self._worker is None:
            return
        self._stopping = True
        deadline = time.monotonic() + STOP_GRACE
        try:
            self._queue.put(None, timeout=STOP_GRACE / 2)
        except queue.Full:
            pass  # the sender is stuck on a worker that does not read: it is killed below
        try:
            self._worker.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.error("shadow %s did not finish within %gs of the stop; killed", self.ref,
                      STOP_GRACE)
            self._worker.kill()
            self._worker.wait()
        for thread in self._threads:  # the worker is gone, and with it their pipes
            thread.join(timeout=1.0)

    def _send(self) -> None:
        """Write queued requests to the worker, a batch at a time: waking for every
        request made this thread take the interpreter lock from the event loop hundreds
        of times a second (+18% on the champion's single-row p99, bench_shadow)."""
        assert self._worker is not None and self._worker.stdin is not None
        stdin = self._worker.stdin
        ending = False
        while not ending:
            batch = [self._queue.get()]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            ending = batch[-1] is None
            answered = [item for item in batch if item is not None]
            with self._bytes_guard:
                self._queued_bytes -= sum(len(item.body) for item in answered)
            if answered and self.alive:
                self._writing_since = time.monotonic()
                try:
                    stdin.write(b"".join(map(frame, answered)))
                    stdin.flush()
                except OSError:  # the worker is gone; /health says so
                    self.alive = False
                    self.dropped += len(answered)
                finally:
                    self._writing_since = None
            elif answered:
                self.dropped += len(answered)
            if not ending:
                time.sleep(SEND_EVERY)
        try:
            stdin.close()
        except OSError:
            pass

    def _listen(self, reports: IO[bytes]) -> None:
        """The worker's reports, a JSON line each: its version and counts."""
        for line in reports:
            report = orjson.loads(line)
            self.version, self.scored, self.failed = (report["version"], report["scored"],
                                                      report["failed"])
            self._ready.set()
        if self.alive and not self._stopping:
            code = self._worker.wait() if self._worker is not None else None
            log.error("shadow %s stopped (exit %s); serving without it", self.ref, code)
        self.alive = False
        self._ready.set()

