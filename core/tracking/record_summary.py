"""What the run screen shows of a run's reproducibility record (`reproduce.json`): typed
once here, whichever engine wrote it (a local run says `method`, a Dask run `kind`) and
whether the run is this project's or came by sync."""

from __future__ import annotations

import msgspec


class GitState(msgspec.Struct):
    commit: str = ""
    dirty: bool = False


class Environment(msgspec.Struct):
    python: str = ""
    packages: dict[str, str | None] = {}  # package -> version (None: not installed)
    platform: str = ""


class SplitSummary(msgspec.Struct):
    method: str = ""  # how the holdout was chosen (a local run)
    kind: str = ""  # the same, as a Dask run says it
    rows: dict[str, int] = {}  # side (train, valid, holdout) -> rows
    holdout_from: str | None = None  # the first time in the holdout, for a time split

    @property
    def how(self) -> str:
        return self.method or self.kind or "-"


class RecordSummary(msgspec.Struct):
    seed: int | None = None
    split: SplitSummary = msgspec.field(default_factory=SplitSummary)
    git: GitState | None = None  # None: not in a git repository
    environment: Environment = msgspec.field(default_factory=Environment)


def read_summary(data: bytes) -> RecordSummary | None:
    """None for a record this version cannot read (a stranger's, or damaged): the screen
    then says so rather than failing."""
    try:
        return msgspec.json.decode(data, type=RecordSummary)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
