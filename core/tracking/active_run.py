"""Tracking API for people's own training scripts, named like MLflow's.

    import mlyard

    with mlyard.start_run(name="baseline"):
        mlyard.log_params({"num_leaves": 31})
        booster = lgb.train(params, train_set, callbacks=[mlyard.lightgbm_callback()])
        mlyard.log_metric("holdout_auc", 0.91)

Metric points go to an in-memory buffer that a background thread flushes about once a
second, so logging costs microseconds and never waits for the catalog lock. The run
itself is stored with its first unit of work (at the latest `START_DELAY` after it
starts), so a short run costs one unit of work, not two.
"""

from __future__ import annotations

import atexit
import os
import socket
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

import msgspec.structs
import pyarrow as pa

from mlyard.core.errors import TrackingError
from mlyard.core.tracking.metric_buffer import MetricBuffer
from mlyard.core.tracking.provenance import current_user
from mlyard.core.workspace import Workspace, project_workspace
from mlyard.storage import run_outcomes, runs_store, spool_folder
from mlyard.storage.engine import Connection

_active: list[Run] = []
_active_guard = threading.Lock()
_uncaught_exception = False


class RunStopped(Exception):
    """Raised inside a run to end it early on purpose, with its own status (a tuning
    trial stopped for poor progress ends `pruned`, not `failed`)."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Run:
    """A tracked run; use it as a context manager or call `end()`."""

    def __init__(self, workspace: Workspace, record: runs_store.RunRecord,
                 buffer: MetricBuffer) -> None:
        self.workspace = workspace
        self.run_id = record.run_id
        self.name = record.name
        self._record = record
        self._buffer = buffer
        self._next_step: dict[str, int] = {}
        self._ended = False
        self._captured: tuple[TextIO, TextIO] | None = None

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is None:
            self.end("finished")
        elif isinstance(exc, RunStopped):
            self.end(exc.status, exc.reason)
        elif isinstance(exc, KeyboardInterrupt):
            self.end("failed", "interrupted (KeyboardInterrupt)")
        else:
            self.end("failed", f"{type(exc).__name__}: {exc}")

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """Record one point; without `step`, each key counts 0, 1, 2, ..."""
        if type(value) is not float:
            value = _as_float(key, value)
        if step is None:
            step = self._next_step.get(key, 0)
        elif type(step) is not int:
            step = _as_step(key, step)
        if type(key) is not str or not key:
            raise TrackingError(f"metric key {key!r}: expected a non-empty string")
        self._next_step[key] = step + 1
        self._buffer.add((key, value, step, time.time()))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Record several metrics at one step in a single call."""
        now = time.time()
        next_step = self._next_step
        if step is not None and type(step) is not int:
            step = _as_step("step", step)
        points = []
        for key, raw in metrics.items():
            if type(key) is not str or not key:
                raise TrackingError(f"metric key {key!r}: expected a non-empty string")
            at = next_step.get(key, 0) if step is None else step
            next_step[key] = at + 1
            points.append((key, raw if type(raw) is float else _as_float(key, raw), at, now))
        self._buffer.extend(points)

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record params; a key logged twice must keep the same value."""
        clean = {_check_key("param", k): str(v) for k, v in params.items()}
        with self.session() as con:
            runs_store.set_params(con, self.run_id, clean)

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        clean = {_check_key("tag", k): str(v) for k, v in tags.items()}
        with self.session() as con:
            runs_store.set_tags(con, self.run_id, clean)

    def log_artifact(self, path: str | Path, name: str | None = None) -> str:
        """Copy a file into the object store and attach it to the run; return its hash."""
        source = Path(path)
        if not source.is_file():
            raise TrackingError(f"{source}: artifact not found or not a file")
        digest = self.workspace.objects.put_file(source)
        self._attach(name or source.name, digest, source.stat().st_size)
        return digest

    def log_bytes(self, name: str, data: bytes) -> str:
        """Store bytes made in memory (a model, a JSON record) as an artifact."""
        digest = self.workspace.objects.put_bytes(data)
        self._attach(name, digest, len(data))
        return digest

    def session(self) -> AbstractContextManager[Connection]:
        """A unit of work on the catalog that may refer to this run (the run is stored by
        the first one, if it is not yet)."""
        return self._buffer.unit()

    def _attach(self, name: str, digest: str, size: int) -> None:
        with self.session() as con:
            runs_store.add_artifact(con, self.run_id, name, digest, size, time.time())

    def flush(self) -> None:
        """Make the run and every point logged so far visible to readers now."""
        self._buffer.flush()

    def end(self, status: str = "finished", error: str | None = None) -> None:
        """Flush what is buffered and record how the run ended (once)."""
        if self._ended:
            return
        self._ended = True
        with _active_guard:
            if self in _active:
                _active.remove(self)
        self._release_output()
        self._buffer.stop()
        remaining = self._buffer.drain()
        if self._buffer.dropped:
            # Points were lost while the workspace could not take them: the run must not
            # look complete.
            lost = (f"{self._buffer.dropped} metric points or log lines could not be "
                    f"stored ({self._buffer.last_error or 'writes kept failing'})")
            warnings.warn(f"mlyard run {self.run_id[:8]}: {lost}", stacklevel=2)
            status, error = "failed", f"{lost}; {error}" if error else lost
        unstored = self._buffer.take_start()
        ended = msgspec.structs.replace(self._record, status=status, end_time=time.time(),
                                        error=error)
        ended.heartbeat = ended.end_time or ended.heartbeat
        catalog = self.workspace.catalog
        unsaved = {kind: batch.num_rows for kind, batch in remaining.items()}
        try:
            # Sealed into the spool, where every unit of work looks first: durable now,
            # loaded into the catalog with the other runs ended about now.
            points = remaining.pop("metrics", None)
            for kind, batch in remaining.items():  # output lines, if any
                self._buffer.spool(kind, batch)
                del unsaved[kind]
            self._buffer.spool("runs", runs_store.ended_run_table(ended, unstored is None,
                                                                  points))
        except OSError as exc:
            # The run's reserved block can take the outcome even on a full disk; the next
            # unit of work that notices the run is gone applies it. What was still
            # buffered is lost, so the run is not recorded as whole.
            lost = (f"{sum(unsaved.values())} metric points or log lines could not be "
                    f"stored at the end ({exc})")
            run_outcomes.record(catalog.outcomes_dir, self.run_id, "failed",
                                f"{lost}; {error}" if error else lost)
            raise TrackingError(f"run {self.run_id[:8]}: could not store how it ended "
                                f"({exc}); check free disk space") from exc
        run_outcomes.release(catalog.outcomes_dir, self.run_id)
        spool_folder.fold_soon(catalog)

    def log_text(self, text: str, artifact_file: str) -> str:
        """Store `text` as the artifact `artifact_file` (MLflow's `log_text`); return its
        hash."""
        return self.log_bytes(artifact_file, text.encode())

    def log_lines(self, text: str, stream: str = "log") -> None:
        """Record output lines, shown by `mlyard runs log` and the UI's live log tail."""
        lines = text.splitlines()
        if lines:
            self._buffer.add_lines(stream, lines)

    def capture_output(self) -> None:
        """Copy everything printed to stdout and stderr into the run's log, until it ends."""
        if self._captured is None:
            self._captured = (sys.stdout, sys.stderr)
            sys.stdout = _Tee(sys.stdout, self, "stdout")
            sys.stderr = _Tee(sys.stderr, self, "stderr")

    def _release_output(self) -> None:
        if self._captured is not None:
            for tee in (sys.stdout, sys.stderr):
                if isinstance(tee, _Tee):
                    tee.flush_partial()
            sys.stdout, sys.stderr = self._captured
            self._captured = None


def start_run(
    name: str | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    workspace: Workspace | Path | None = None,
    flush_interval: float = 1.0,
    capture_output: bool = False,
) -> Run:
    """Create a run in the current project's catalog and make it the active run.

    With `capture_output`, what the script prints becomes the run's log as well.
    """
    ws = workspace if isinstance(workspace, Workspace) else project_workspace(workspace)
    now = time.time()
    source = sys.argv[0] if sys.argv and sys.argv[0] else "<interactive>"
    all_tags = {"mlyard.source": source}
    all_tags.update({_check_key("tag", k): str(v) for k, v in (tags or {}).items()})
    record = runs_store.RunRecord(
        run_id=uuid.uuid4().hex, project=ws.project, name=name, status="running",
        start_time=now, end_time=None, heartbeat=now, pid=os.getpid(),
        host=socket.gethostname(), user_name=current_user(), error=None,
        params={_check_key("param", k): str(v) for k, v in (params or {}).items()},
        tags=all_tags,
    )
    run_outcomes.reserve(ws.catalog.outcomes_dir, record.run_id)  # see Run.end
    buffer = MetricBuffer(ws.catalog, record.run_id, flush_interval=flush_interval,
                          start=record)
    buffer.start()
    run = Run(ws, record, buffer)
    if capture_output:
        run.capture_output()
    with _active_guard:
        _active.append(run)
    _install_exit_hooks()
    return run


def active_run() -> Run | None:
    with _active_guard:
        return _active[-1] if _active else None


def end_run(status: str = "finished") -> None:
    run = active_run()
    if run is not None:
        run.end(status)


def log_metric(key: str, value: float, step: int | None = None) -> None:
    _require_run().log_metric(key, value, step)


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    _require_run().log_metrics(metrics, step)


def log_param(key: str, value: Any) -> None:
    _require_run().log_param(key, value)


def log_params(params: Mapping[str, Any]) -> None:
    _require_run().log_params(params)


def set_tag(key: str, value: Any) -> None:
    _require_run().set_tag(key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    _require_run().set_tags(tags)


def log_artifact(path: str | Path, name: str | None = None) -> str:
    return _require_run().log_artifact(path, name)


def log_text(text: str, artifact_file: str) -> str:
    return _require_run().log_text(text, artifact_file)


def lightgbm_callback(run: Run | None = None, period: int = 1) -> Callable[[Any], None]:
    """A LightGBM callback that logs every evaluation result at every `period`-th iteration.

    Points are named `<dataset>.<metric>` (e.g. `valid.auc`) with the iteration as step.
    """
    target = run or _require_run()

    def _log_iteration(env: Any) -> None:
        if env.iteration % period:
            return
        target.log_metrics(
            {f"{item[0]}.{item[1]}": float(item[2]) for item in env.evaluation_result_list},
            step=env.iteration,
        )

    # LightGBM runs callbacks by `order` and in no fixed order within one value, and
    # early stopping (30) ends training by raising: log before it, or the last iteration
    # would sometimes be lost.
    _log_iteration.order = 25  # type: ignore[attr-defined]
    return _log_iteration


class _Tee:
    """Writes through to the real stream and sends complete lines to the run's log."""

    def __init__(self, stream: TextIO, run: Run, name: str) -> None:
        self._stream = stream
        self._run = run
        self._name = name
        self._partial = ""

    def write(self, text: str) -> int:
        written = self._stream.write(text)
        self._partial += text
        if "\n" in self._partial:
            complete, self._partial = self._partial.rsplit("\n", 1)
            self._run.log_lines(complete, self._name)
        return written

    def flush(self) -> None:
        self._stream.flush()

    def flush_partial(self) -> None:
        if self._partial:
            self._run.log_lines(self._partial, self._name)
            self._partial = ""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _require_run() -> Run:
    run = active_run()
    if run is None:
        raise TrackingError("no active run; call start_run() first")
    return run


def _as_float(key: str, value: Any) -> float:
    if isinstance(value, (str, bytes)) or value is None:
        raise TrackingError(
            f"metric {key!r}: expected a number, got {type(value).__name__} {value!r}"
        )
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TrackingError(
            f"metric {key!r}: expected a number, got {type(value).__name__}"
        ) from None


def _as_step(key: str, step: Any) -> int:
    if isinstance(step, int) and not isinstance(step, bool):
        return step
    try:
        as_int = int(step)
    except (TypeError, ValueError):
        as_int = None
    if as_int is None or as_int != step:
        raise TrackingError(f"metric {key!r}: step must be an integer, got {step!r}")
    return as_int


def _check_key(kind: str, key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise TrackingError(f"{kind} key {key!r}: expected a non-empty string")
    return key


_hooks_installed = False


def _install_exit_hooks() -> None:
    """End runs left open when the script exits: failed if it died of an exception."""
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    previous = sys.excepthook

    def _note_uncaught(*args: Any) -> None:
        global _uncaught_exception
        _uncaught_exception = True
        previous(*args)

    sys.excepthook = _note_uncaught
    # pyarrow imports pandas (when installed) on its first array; at exit that import
    # fails ("can't register atexit after shutdown") and the run would be left open.
    pa.array([0])
    atexit.register(_end_open_runs)


def _end_open_runs() -> None:
    while (run := active_run()) is not None:
        if _uncaught_exception:
            run.end("failed", "the script exited with an uncaught exception")
        else:
            run.end("finished")
