"""Work on the next few items of a list while the current one is handed out, in order.

A burst of small files is ingested one after another, but most of each file's time is
spent in polars, the Parquet writer and the filesystem (creating, fsyncing, renaming),
which release the GIL: the next files can be checked and snapshotted while this one is
recorded. Results come back in list order, so everything that depends on order (version
numbers, which of two identical files comes first) stays in the calling thread.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")

# Threads, not cores: a file spends much of its time waiting on the filesystem. On two
# cores, 500 small files in-process: 1 thread ~115-130 files/s, 2 threads 178-188,
# 4 threads 206-221 (docs/benchmarks.md, the watched-folder section).
WORKERS = 4


class Lookahead(Generic[T]):
    """Runs `work(index)` on `workers` threads for the indices it is told may run early,
    at most `workers` of them ahead of the caller; `take(index)` gives that index's
    result or raises its exception, running it in the caller's thread when it was not
    allowed to start early. The caller stays free for what must be done in order."""

    def __init__(self, work: Callable[[int], T], workers: int | None = None) -> None:
        self._work = work
        self._workers = WORKERS if workers is None else workers
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="mlyard-ahead") \
            if self._workers > 1 else None
        self._waiting: deque[int] = deque()
        self._started: dict[int, Future[T]] = {}

    def allow(self, indices: Iterable[int]) -> None:
        """These indices (ascending, none taken yet) may run before their turn."""
        self._waiting.extend(indices)

    def take(self, index: int) -> T:
        while self._waiting and self._waiting[0] < index:
            self._waiting.popleft()  # taken already, in the caller's thread
        while self._pool is not None and self._waiting and \
                len(self._started) < self._workers:
            ahead = self._waiting.popleft()
            self._started[ahead] = self._pool.submit(self._work, ahead)
        started = self._started.pop(index, None)
        return started.result() if started is not None else self._work(index)

    def close(self) -> None:
        """Drop what has not started and wait for what has (its files are its own)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
