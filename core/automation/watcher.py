"""Watched folders: a file that lands is ingested once it is complete.

watchdog reports creations, writes and renames; a file counts as complete once its size
and modification time have stayed the same for `settle_seconds` (a copy over the network
or a slow writer keeps changing them). Temporary and hidden names are ignored, so the
usual write-then-rename pattern ingests the final name only. Files already in a folder
when watching starts are looked at too; the same bytes never make a second version.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from mlyard.core.automation.jobs import job
from mlyard.core.automation.pipeline import ingest_files
from mlyard.core.data.scaffold import data_files
from mlyard.core.data.sniff import DATA_SUFFIXES
from mlyard.core.errors import ConfigError
from mlyard.core.workspace import Workspace

log = logging.getLogger("mlyard.watch")

IGNORED_NAMES = ("*.part", "*.tmp", "~*", ".*")


@dataclass(frozen=True)
class SeenFile:
    ts: float
    path: str
    outcome: str  # "-> churn@7", "unchanged (churn@3)", "refused (quarantined)"


def is_candidate(path: Path) -> bool:
    """A CSV or Parquet file whose name is not a temporary or hidden one."""
    name = path.name
    return (not any(fnmatch.fnmatch(name, pattern) for pattern in IGNORED_NAMES)
            and path.suffix.lower() in DATA_SUFFIXES)


class FolderWatcher:
    """Ingest complete files from the watched folders; report new versions to a callback."""

    def __init__(self, ws: Workspace, folders: list[Path], polling: bool = False,
                 settle_seconds: float | None = None,
                 on_new_versions: Callable[[list[str]], None] | None = None,
                 poll_interval: float = 1.0) -> None:
        missing = [str(f) for f in folders if not f.is_dir()]
        if missing:
            raise ConfigError(f"{ws.config_path}: key data.watch: folder {missing[0]} does "
                              "not exist; create it or change the key")
        self.ws = ws
        self.folders = folders
        self.polling = polling
        self.settle = ws.config.automation.settle_seconds if settle_seconds is None \
            else settle_seconds
        self.on_new_versions = on_new_versions
        self.recent: deque[SeenFile] = deque(maxlen=20)
        self._pending: dict[Path, tuple[int, float, float]] = {}  # size, mtime, stable since
        self._ingested: dict[Path, tuple[int, float]] = {}
        self._ingesting = False
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._observer = PollingObserver(timeout=poll_interval) if polling else Observer()
        self._thread = threading.Thread(target=self._settle_loop, name="mlyard-watch-settle",
                                        daemon=True)

    def start(self) -> None:
        handler = _Handler(self.note)
        for folder in self.folders:
            self._observer.schedule(handler, str(folder), recursive=False)
        self._observer.start()
        for folder in self.folders:
            for path in data_files(folder):
                self.note(path)
        self._thread.start()
        log.info("watching %s%s", ", ".join(map(str, self.folders)),
                 " (polling)" if self.polling else "")

    def stop(self) -> None:
        self._stop.set()
        self._observer.stop()
        self._observer.join(timeout=10)
        if self._thread.is_alive():
            self._thread.join(timeout=60)

    def busy(self) -> bool:
        """Files are still settling or being ingested."""
        with self._guard:
            return bool(self._pending) or self._ingesting

    def note(self, path: Path) -> None:
        """Consider `path` again: it was created, written or renamed into place."""
        if not is_candidate(path):
            return
        try:
            stat = path.stat()
        except OSError:
            return
        with self._guard:
            self._pending[path] = (stat.st_size, stat.st_mtime, time.monotonic())

    def _settle_loop(self) -> None:
        tick = min(0.25, max(self.settle / 4, 0.05))
        while not self._stop.wait(tick):
            ready = self._complete_files()
            if ready:
                try:
                    self._ingest(ready)
                except Exception:  # one failed batch must not stop the watcher
                    log.exception("ingesting %d file(s) failed", len(ready))
                finally:
                    with self._guard:
                        self._ingesting = False

    def _complete_files(self) -> list[Path]:
        now = time.monotonic()
        ready: list[Path] = []
        with self._guard:
            for path, (size, mtime, since) in list(self._pending.items()):
                try:
                    stat = path.stat()
                except OSError:
                    del self._pending[path]  # gone (renamed or deleted) before it settled
                    continue
                if (stat.st_size, stat.st_mtime) != (size, mtime):
                    self._pending[path] = (stat.st_size, stat.st_mtime, now)
                elif now - since >= self.settle:
                    del self._pending[path]
                    if self._ingested.get(path) != (size, mtime):
                        ready.append(path)
                        self._ingested[path] = (size, mtime)
            self._ingesting = bool(ready)
        return sorted(ready)

    def _ingest(self, files: list[Path]) -> None:
        with job(self.ws, "ingest", "watch") as current:
            summary = ingest_files(self.ws, files)
            current.detail.update(files=[str(f) for f in files],
                                  new_versions=summary.new_versions,
                                  unchanged=summary.unchanged, refused=summary.refused,
                                  drift=summary.drift)
            current.refusals += summary.refused
        now = time.time()
        for path, outcome in summary.outcomes:
            self.recent.appendleft(SeenFile(now, path, outcome))
        if summary.new_versions and self.on_new_versions is not None:
            self.on_new_versions(summary.new_versions)


class _Handler(FileSystemEventHandler):
    def __init__(self, note: Callable[[Path], None]) -> None:
        self._note = note

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return
        target = getattr(event, "dest_path", "") or event.src_path
        self._note(Path(str(target)))


class Debouncer:
    """Run `action` once, `delay` seconds after the last `poke` and once `hold` says
    nothing more is on its way; pokes that arrive while it runs lead to exactly one more
    run afterwards. A burst of new files thus makes one retrain, not one per file."""

    def __init__(self, delay: float, action: Callable[[], object],
                 hold: Callable[[], bool] = lambda: False) -> None:
        self.delay = delay
        self.action = action
        self.hold = hold
        self._due: float | None = None
        self._stopped = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="mlyard-debounce", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def poke(self) -> None:
        with self._cond:
            self._due = time.monotonic() + self.delay
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=60)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (self._due is None
                                             or self._due > time.monotonic()):
                    timeout = None if self._due is None else self._due - time.monotonic()
                    self._cond.wait(timeout)
                if self._stopped:
                    return
                if self.hold():
                    self._due = time.monotonic() + min(self.delay, 1.0)
                    continue
                self._due = None
            try:
                self.action()
            except Exception:
                log.exception("the pipeline after new data failed")
