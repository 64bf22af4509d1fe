"""Files checked ahead of their turn while earlier ones are recorded: small neighbours in
runs checked together (core/data/small_files.py), larger ones one by one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from mlyard.core.data import small_files
from mlyard.core.data.lookahead import Lookahead

T = TypeVar("T")


class RunsAhead(Generic[T]):
    """Files checked ahead of their turn, on the lookahead's threads: small neighbours
    in runs that `check_run` reads and checks together, the others one by one with
    `check`. `take(index)` gives a file's result, or raises what its check raised."""

    def __init__(self, check: Callable[[int], T],
                 check_run: Callable[[list[int]], list[T | Exception]],
                 workers: int | None) -> None:
        self._check = check
        self._runs: list[list[int]] = []
        self._run_of: dict[int, int] = {}
        self._done: dict[int, list[T | Exception]] = {}
        self._lookahead = Lookahead(lambda run: check_run(self._runs[run]), workers)

    def plan(self, independent: list[int], paths: list[Path]) -> None:
        """Cut the files that may go early into runs of small neighbours (a large file
        is a run of its own), and let the runs start."""
        first = len(self._runs)
        for index in independent:
            small = _size(paths[index]) <= small_files.GROUP_BYTES
            last = self._runs[-1] if len(self._runs) > first else None
            if last is not None and small and last[-1] == index - 1 and \
                    len(last) < small_files.GROUP_FILES and \
                    _size(paths[last[-1]]) <= small_files.GROUP_BYTES:
                last.append(index)
            else:
                self._runs.append([index])
            self._run_of[index] = len(self._runs) - 1
        self._lookahead.allow(range(first, len(self._runs)))

    def take(self, index: int) -> T:
        run = self._run_of.get(index)
        if run is None:
            return self._check(index)
        if run not in self._done:
            self._done[run] = self._lookahead.take(run)
        members = self._runs[run]
        outcome = self._done[run][members.index(index)]
        if index == members[-1]:
            del self._done[run]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def close(self) -> None:
        self._lookahead.close()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # gone: its own turn says so
