"""The typed model of `mlyard.toml`, validated at load so errors name the file and key.

Every key has a default, so a file with only `[data] target = "y"` is a working project.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Literal, get_args

import msgspec

from mlyard.core.durations import parse_every
from mlyard.core.errors import ConfigError

ColumnType = Literal["int", "float", "bool", "category", "string", "date", "datetime"]
TaskType = Literal["binary", "multiclass", "regression"]
Device = Literal["cpu", "gpu"]


# A LightGBM parameter's value, as TOML, the command line and a tuning trial give it.
ParamValue = str | int | float | bool | list[str]

class ColumnContract(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """What one input column must look like.

    type: the logical type values must parse as.
    min / max: inclusive bounds for numeric values.
    max_null_rate: the largest share of missing values a file may have (0 to 1).
    categories: for `category` columns, the levels known so far. A file with other
        levels is accepted with a warning naming them, unless `closed`.
    closed: refuse any level not in `categories` (a fixed code list).
    format: for `date`/`datetime` columns, the one strftime format values are read with
        (pinned by `mlyard init`); without it, ISO 8601.
    strict: whether `min`, `max`, `max_null_rate`, the share of new levels and values
        that do not fit the type refuse a file (true, the default for rules a person
        writes) or are counted and warned about, the value read as missing (false: what
        `mlyard init` writes, since it inferred them from a sample). A `format` and a
        `closed` list refuse either way.
    spelling: for `bool` columns, how the sample wrote them ("yes/no", "1/0",
        "true/false", ...): a file written another way reads the same values, with a
        warning that the source changed its encoding.
    role: "segment" keeps the column out of training while it is carried through ingest
        and scoring, to break figures down by (`[monitor] segments`).
    sensitive: figures for segments of this column include fairness figures
        (demographic parity, equalized odds, the largest gap between groups).
    """

    type: ColumnType
    min: float | None = None
    max: float | None = None
    max_null_rate: float = 0.0
    categories: list[str] | None = None
    closed: bool = False
    format: str | None = None
    strict: bool = True
    spelling: str | None = None
    role: Literal["segment"] | None = None
    sensitive: bool = False


class ProjectConfig(msgspec.Struct, forbid_unknown_fields=True):
    """name: the project's name in the catalog and in model references."""

    name: str = "project"


class DataConfig(msgspec.Struct, forbid_unknown_fields=True):
    """How input files look and which columns play which role.

    watch: folders (relative to mlyard.toml) that hold incoming files.
    dataset: the catalog name for versions of this data (default: the project name).
    target / id_column / time_column: roles; id and time are never features.
    exclude: further columns that are kept but never used as features.
    max_new_level_share: refuse a file when more than this share of a category column's
        values are levels the contract has never seen (a recoding, not new business).
    columns: the schema contract; when empty, it is inferred from the first file ingested.
    """

    watch: list[str] = msgspec.field(default_factory=lambda: ["data"])
    dataset: str | None = None
    target: str | None = None
    id_column: str | None = None
    time_column: str | None = None
    time_format: str | None = None
    exclude: list[str] = msgspec.field(default_factory=list)
    dedupe: bool = True
    max_new_level_share: float = 0.5
    columns: dict[str, ColumnContract] = msgspec.field(default_factory=dict)


class TrainConfig(msgspec.Struct, forbid_unknown_fields=True):
    """How to train.

    task: binary, multiclass or regression (sets the objective and the metrics).
    metric: the holdout metric that ranks models and gates promotion (default: auc,
        multi_logloss or rmse by task).
    seed, deterministic, num_threads: what makes a run reproducible bit for bit.
    holdout_fraction: the share of rows kept out of training for evaluation: the newest,
        or without a time column the rows whose identity hashes into it (the same rows
        for every training, so versions are compared on rows none trained on).
    valid_fraction: the share of the remaining rows used for early stopping.
    window: train on the last N dataset versions (0: every version).
    threshold: the probability above which a binary prediction counts as positive.
    params: LightGBM parameters on top of mlyard's defaults.
    device: "cpu", or "gpu" for LightGBM's OpenCL learner (the PyPI wheel has it on
        Linux; it needs an OpenCL runtime: the GPU driver's ICD, or pocl-opencl-icd on a
        CPU). gpu_platform_id, gpu_device_id: which OpenCL platform and device (default:
        the first).
    """

    task: TaskType = "binary"
    metric: str | None = None
    seed: int = 42
    deterministic: bool = True
    num_threads: int = 2
    holdout_fraction: float = 0.2
    valid_fraction: float = 0.2
    window: int = 0
    threshold: float = 0.5
    num_boost_round: int = 500
    early_stopping_rounds: int = 50
    params: dict[str, ParamValue] = msgspec.field(default_factory=dict)
    device: Device = "cpu"
    gpu_platform_id: int | None = None
    gpu_device_id: int | None = None


class RegistryConfig(msgspec.Struct, forbid_unknown_fields=True):
    """auto_register: make every finished `mlyard train` run a model version."""

    auto_register: bool = True


PipelineName = Literal["ingest", "train", "promote"]


class AutomationConfig(msgspec.Struct, forbid_unknown_fields=True):
    """How watchers and schedules behave (`mlyard watch`, `mlyard daemon`).

    settle_seconds: a watched file counts as complete once its size and modification
        time have not changed for this long.
    debounce_seconds: after the last new dataset version from a watched folder, wait this
        long, then run `on_new_data` once for the whole burst.
    on_new_data: what new data runs: "ingest" (nothing more), "train" (retrain) or
        "promote" (retrain, then gates, then promote to champion).
    on_busy: when the project is already training: "skip" (recorded with the reason) or
        "wait" for it to finish.
    misfire_grace_seconds: a schedule missed while nothing was running still runs once
        when it is at most this late.
    """

    settle_seconds: float = 2.0
    debounce_seconds: float = 30.0
    on_new_data: PipelineName = "ingest"
    on_busy: Literal["skip", "wait"] = "skip"
    misfire_grace_seconds: float = 3600.0


class ScheduleConfig(msgspec.Struct, forbid_unknown_fields=True):
    """One `[[schedule]]`: a pipeline run by cron expression or at an interval.

    cron: five crontab fields, e.g. "0 2 * * *" (local time).
    every: an interval such as "90s", "15m", "6h" or "1d".
    pipeline: "ingest" (the watched folders), "train" (ingest, then retrain) or "promote"
        (then gates and promotion to champion).
    """

    name: str
    cron: str | None = None
    every: str | None = None
    pipeline: PipelineName = "train"


class ParamRange(msgspec.Struct, forbid_unknown_fields=True):
    """One `[tune.space]` entry: `{ low = 8, high = 256, log = true }` (integers when both
    bounds are), or `{ choices = ["gbdt", "dart"] }`."""

    low: int | float | None = None
    high: int | float | None = None
    log: bool = False
    choices: list[str | int | float | bool] | None = None


class TuneConfig(msgspec.Struct, forbid_unknown_fields=True):
    """`mlyard tune`.

    trials: how many trials one `mlyard tune` runs (--trials beats it).
    timeout: stop starting trials after this many seconds (0: no limit).
    prune: stop unpromising trials early on their per-iteration validation metric.
    space: LightGBM parameters to search; mlyard's defaults when empty.
    """

    trials: int = 30
    timeout: float = 0.0
    prune: bool = True
    space: dict[str, ParamRange] = msgspec.field(default_factory=dict)


class ComputeConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Where `mlyard train` and `mlyard predict` do their heavy work.

    engine: "local" (this process) or "dask" (a Dask cluster; needs `mlyard[dask]`).
    address: the Dask scheduler, e.g. "tcp://10.0.0.5:8786" (`--cluster` beats it).
    """

    engine: Literal["local", "dask"] = "local"
    address: str | None = None


class ServeConfig(msgspec.Struct, forbid_unknown_fields=True):
    """`mlyard serve`.

    keep_predictions: how long logged predictions are kept ("90d", "12h"; "forever"
        keeps them all). They live in `.mlyard/logs/predictions/`, one folder per day;
        a shadow's records in `.mlyard/logs/shadow/`, kept as long.
    shadow: a version or alias (e.g. "challenger") that also scores every request after
        it has been answered, for `mlyard shadow report` and the shadow gates;
        `mlyard serve --shadow` overrides it, `--no-shadow` turns it off.
    """

    keep_predictions: str = "90d"
    shadow: str | None = None

    @property
    def keep_seconds(self) -> float | None:
        return None if self.keep_predictions == "forever" else parse_every(
            self.keep_predictions)


class BundlesConfig(msgspec.Struct, forbid_unknown_fields=True):
    """`mlyard import`: how much a bundle may unpack to, checked before anything is
    written (a small compressed bundle can declare gigabytes).

    max_member_mb: the largest single file (a dataset snapshot or a model).
    max_unpacked_mb: all files together.
    max_expansion: all files together, as a multiple of the bundle's own size. What a
        bundle holds (Parquet snapshots, model text) compresses a few times at most; a
        bundle that unpacks to hundreds of times its size is built to fill a disk.
    """

    max_member_mb: int = 8192
    max_unpacked_mb: int = 16384
    max_expansion: int = 100


DriftMethod = Literal["ks", "wasserstein", "chisquare", "jensenshannon", "psi"]


class ColumnMonitorConfig(msgspec.Struct, forbid_unknown_fields=True):
    """`[monitor.columns.NAME]`: this column's drift method and threshold (a p-value for
    ks and chisquare, a distance otherwise)."""

    method: DriftMethod | None = None
    threshold: float | None = None


class MonitorConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Drift, data quality and alerts.

    drift_share: the dataset has drifted when more than this share of features has.
    on_drift: what severe drift (dataset drift) does: "alert" (a catalog event) or
        "retrain" (also runs the train pipeline, once per reference and data).
    on_ingest: check each new dataset version against the champion when it is ingested
        by `mlyard pipeline`, a schedule or a watcher.
    columns: per-column overrides of the drift method and threshold.
    min_rows: per drift method, the fewest current values it judges; below, a column is
        "unreliable" and never counts (defaults in docs/monitoring.md).
    segments: columns, or lists of columns taken together, to break model figures down
        by: ["region", ["region", "plan"]].
    segment_drop: a group whose live primary metric is worse than its training figure
        by more than this (in the metric's units) raises a `segment` alert.
    """

    drift_share: float = 0.5
    on_drift: Literal["alert", "retrain"] = "alert"
    on_ingest: bool = True
    columns: dict[str, ColumnMonitorConfig] = msgspec.field(default_factory=dict)
    min_rows: dict[DriftMethod, int] = msgspec.field(default_factory=dict)
    segments: list[str | list[str]] = msgspec.field(default_factory=list)
    segment_drop: float = 0.05


AlertKind = Literal["drift", "quality", "refused", "job", "gate", "server", "spool",
                    "workspace", "segment"]
ALERT_KINDS: tuple[AlertKind, ...] = get_args(AlertKind)


class AlertsConfig(msgspec.Struct, forbid_unknown_fields=True):
    """`[alerts]`: who hears of an alert, and how often (docs/monitoring.md#alerts).

    webhooks: URLs each alert is POSTed to as JSON; its `text` field is a readable line,
        so Slack, Mattermost and ntfy-style receivers take it as it is.
    command: a command line (split like a shell's, run without one) that gets each alert
        as JSON on standard input and its line in MLYARD_ALERT_TEXT; exit 0 is delivered.
    kinds: which alerts are sent: drift, quality (warnings), refused (quarantined
        files), job (failed jobs), gate (a failed gate on automated promotion), server
        (a degraded server), spool (an unreadable spool segment), workspace (an entry in
        the workspace's logs or quarantine that is not a regular file, set aside),
        segment (a group's live figure below its gate or its training figure).
    drift_severity: the least drift severity sent, "moderate" or "severe".
    cooldown: after an alert of a kind is sent, others of that kind within this interval
        are recorded as suppressed instead of sent, so a flapping signal cannot flood.
    retries: further attempts per receiver after a failed one, `backoff` apart, doubling.
    timeout: the longest one attempt may take.
    wait: how long a one-off command (when no daemon runs) keeps retrying before it
        leaves the rest to the next command or the daemon.
    """

    webhooks: list[str] = msgspec.field(default_factory=list)
    command: str | None = None
    kinds: list[AlertKind] = msgspec.field(default_factory=lambda: list(ALERT_KINDS))
    drift_severity: Literal["moderate", "severe"] = "moderate"
    cooldown: str = "15m"
    retries: int = 3
    backoff: str = "5s"
    timeout: str = "10s"
    wait: str = "15s"

    def seconds(self, key: str) -> float:
        """`cooldown`, `backoff`, `timeout` or `wait` in seconds."""
        return parse_every(getattr(self, key))


class Config(msgspec.Struct, forbid_unknown_fields=True):
    """The whole file. `gates` maps `min_<metric>`, `max_<metric>`,
    `max_regression_vs_champion`, `require_clean_data` and `no_severe_drift` to
    thresholds."""

    project: ProjectConfig = msgspec.field(default_factory=ProjectConfig)
    data: DataConfig = msgspec.field(default_factory=DataConfig)
    train: TrainConfig = msgspec.field(default_factory=TrainConfig)
    registry: RegistryConfig = msgspec.field(default_factory=RegistryConfig)
    gates: dict[str, float | bool] = msgspec.field(default_factory=dict)
    automation: AutomationConfig = msgspec.field(default_factory=AutomationConfig)
    schedule: list[ScheduleConfig] = msgspec.field(default_factory=list)
    monitor: MonitorConfig = msgspec.field(default_factory=MonitorConfig)
    tune: TuneConfig = msgspec.field(default_factory=TuneConfig)
    compute: ComputeConfig = msgspec.field(default_factory=ComputeConfig)
    serve: ServeConfig = msgspec.field(default_factory=ServeConfig)
    bundles: BundlesConfig = msgspec.field(default_factory=BundlesConfig)
    alerts: AlertsConfig = msgspec.field(default_factory=AlertsConfig)

    @property
    def dataset_name(self) -> str:
        return self.data.dataset or self.project.name


_PATH_RE = re.compile(r"at `\$((?:\.[^.`\[]+|\[[^\]]*\])*)`")


def load_config(path: Path) -> Config:
    """Read and validate `path`; raise ConfigError naming the file, line or key."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse_config(raw, str(path))


def parse_config(raw: dict[str, object], source: str) -> Config:
    _check_columns(raw, source)
    try:
        config = msgspec.convert(raw, Config)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {_describe(str(exc))}") from exc
    _check_ranges(config, source)
    return config


def _check_columns(raw: dict[str, object], source: str) -> None:
    """Validate each entry of the keyed tables alone, so an error names the column or
    parameter (msgspec hides dict keys in its paths)."""
    for section, key, shape in (("data", "columns", ColumnContract),
                                ("monitor", "columns", ColumnMonitorConfig),
                                ("tune", "space", ParamRange)):
        table = raw.get(section)
        entries = table.get(key) if isinstance(table, dict) else None
        if not isinstance(entries, dict):
            continue
        for name, entry in entries.items():
            try:
                msgspec.convert(entry, shape)
            except msgspec.ValidationError as exc:
                raise ConfigError(
                    f"{source}: {_describe(str(exc), prefix=f'{section}.{key}.{name}')}"
                ) from exc


def _check_contract(data: DataConfig, source: str) -> None:
    if not 0 < data.max_new_level_share <= 1:
        raise ConfigError(f"{source}: key data.max_new_level_share: expected a share above 0 "
                          f"and at most 1, got {data.max_new_level_share}")
    for name, column in data.columns.items():
        key = f"data.columns.{name}"
        if column.categories is not None and column.type != "category":
            raise ConfigError(f"{source}: key {key}.categories: only category columns have "
                              f"categories (this one is {column.type})")
        if column.closed and not column.categories:
            raise ConfigError(f"{source}: key {key}.closed: a closed column needs its "
                              "categories listed")
        if column.format is not None and column.type not in ("date", "datetime"):
            raise ConfigError(f"{source}: key {key}.format: only date and datetime columns "
                              f"have a format (this one is {column.type})")
        if not 0 <= column.max_null_rate <= 1:
            raise ConfigError(f"{source}: key {key}.max_null_rate: expected a share from 0 "
                              f"to 1, got {column.max_null_rate}")
        if column.min is not None and column.max is not None and column.min > column.max:
            raise ConfigError(f"{source}: key {key}: min {column.min} is above max "
                              f"{column.max}")


def _describe(message: str, prefix: str = "") -> str:
    """Turn msgspec's `... - at `$.data.seed`` into `key data.seed: ...`."""
    match = _PATH_RE.search(message)
    where = ".".join(p for p in (prefix, match.group(1).lstrip(".") if match else "") if p)
    what = _PATH_RE.sub("", message).rstrip(" -")
    if what.startswith("Object contains unknown field"):
        return f"[{where or 'top level'}] has unknown key {what.rsplit(' ', 1)[-1]}"
    if what.startswith("Invalid enum value") and where.endswith(".type"):
        what += f"; expected one of {', '.join(get_args(ColumnType))}"
    if what.startswith("Invalid enum value") and where.endswith(("on_new_data", "pipeline")):
        what += f"; expected one of {', '.join(get_args(PipelineName))}"
    if what.startswith("Invalid enum value") and where.endswith(".method"):
        what += f"; expected one of {', '.join(get_args(DriftMethod))}"
    if what.startswith("Invalid enum value") and where == "train.task":
        what += f"; expected one of {', '.join(get_args(TaskType))}"
    if what.startswith("Invalid enum value") and where == "train.device":
        what += f"; expected one of {', '.join(get_args(Device))}"
    if what.startswith("Invalid enum value") and where.startswith("alerts.kinds"):
        what += f"; expected one of {', '.join(ALERT_KINDS)}"
    return f"key {where}: {what}" if where else what


def segment_columns(config: Config) -> list[tuple[str, ...]]:
    """`[monitor] segments` as column tuples, plus each `role = "segment"` column not
    named there (marking a column a segment asks for its breakdown)."""
    found = [(entry,) if isinstance(entry, str) else tuple(entry)
             for entry in config.monitor.segments]
    named = {name for columns in found for name in columns}
    found += [(name,) for name, column in config.data.columns.items()
              if column.role == "segment" and name not in named]
    return found


def segment_column_names(config: Config) -> tuple[str, ...]:
    """Every column some segment is made of, each once, in the order they are named."""
    return tuple(dict.fromkeys(name for columns in segment_columns(config)
                               for name in columns))


def logged_keys(config: Config) -> tuple[str, ...]:
    """The columns the server keeps beside each logged row, so labels join by id and live
    figures break down by segment without reading the rows back: the id column, then
    each segment column once."""
    id_column = config.data.id_column
    return tuple(dict.fromkeys([*([id_column] if id_column else []),
                                *segment_column_names(config)]))


def _check_segments(config: Config, source: str) -> None:
    roles = {config.data.target: "the target", config.data.id_column: "the id column "
             "(unique per row: every group would be one row)"}
    for columns in segment_columns(config):
        if not columns or len(set(columns)) != len(columns):
            raise ConfigError(f"{source}: key monitor.segments: {list(columns)} must name "
                              "one or more different columns")
        for name in columns:
            if name in roles:
                raise ConfigError(f"{source}: key monitor.segments: {name!r} is {roles[name]}"
                                  "; segment by a column that groups rows")
            if config.data.columns and name not in config.data.columns:
                raise ConfigError(f"{source}: key monitor.segments: no column {name!r} in "
                                  f"[data.columns] (known: {', '.join(config.data.columns)})")


def _check_ranges(config: Config, source: str) -> None:
    _check_contract(config.data, source)
    _check_segments(config, source)
    _check_automation(config, source)
    _check_monitor(config, source)
    _check_tune(config, source)
    _check_alerts(config.alerts, source)
    try:
        config.serve.keep_seconds  # noqa: B018  # parsed here so a bad value names the key
    except ValueError as exc:
        raise ConfigError(f"{source}: key serve.keep_predictions: {exc}; or \"forever\"") \
            from None
    if config.serve.shadow is not None and not config.serve.shadow.strip():
        raise ConfigError(f"{source}: key serve.shadow: expected a version or an alias, "
                          "e.g. \"challenger\"")
    for key in ("gpu_platform_id", "gpu_device_id"):
        value = getattr(config.train, key)
        if value is not None and value < 0:
            raise ConfigError(f"{source}: key train.{key}: expected 0 or more, got {value}")
    for key in ("valid_fraction", "holdout_fraction", "threshold"):
        value = getattr(config.train, key)
        if not 0 < value < 1:
            raise ConfigError(
                f"{source}: key train.{key}: expected a number between 0 and 1, got {value}"
            )
    for key, value in config.gates.items():
        if key in ("require_clean_data", "no_severe_drift"):
            if not isinstance(value, bool):
                raise ConfigError(f"{source}: key gates.{key}: expected true or "
                                  f"false, got {value!r}")
        elif key == "max_regression_vs_champion" or key.startswith(("min_", "max_")):
            if isinstance(value, bool):
                raise ConfigError(f"{source}: key gates.{key}: expected a number, got {value}")
        else:
            raise ConfigError(
                f"{source}: [gates] has unknown key `{key}`; expected min_<metric>, "
                "max_<metric>, max_regression_vs_champion, require_clean_data or "
                "no_severe_drift"
            )


def _check_tune(config: Config, source: str) -> None:
    for name, entry in config.tune.space.items():
        key = f"{source}: key tune.space.{name}"
        if entry.choices is not None:
            if not entry.choices or entry.low is not None or entry.high is not None:
                raise ConfigError(f"{key}: give either non-empty `choices` or `low` and `high`")
            continue
        if entry.low is None or entry.high is None or entry.low >= entry.high:
            raise ConfigError(f"{key}: expected `low` below `high`, or `choices`")
        if entry.log and entry.low <= 0:
            raise ConfigError(f"{key}: a log scale needs `low` above 0")


def _check_alerts(alerts: AlertsConfig, source: str) -> None:
    for key in ("cooldown", "backoff", "timeout", "wait"):
        try:
            alerts.seconds(key)
        except ValueError as exc:
            raise ConfigError(f"{source}: key alerts.{key}: {exc}") from None
    if alerts.retries < 0:
        raise ConfigError(f"{source}: key alerts.retries: expected 0 or more, got "
                          f"{alerts.retries}")
    for index, url in enumerate(alerts.webhooks):
        scheme, _, rest = url.partition("://")
        if scheme.lower() not in ("http", "https") or not rest.strip("/"):
            raise ConfigError(f"{source}: key alerts.webhooks[{index}]: expected an http:// "
                              f"or https:// URL, got {url!r}")
    if alerts.command is not None:
        try:
            words = shlex.split(alerts.command)
        except ValueError as exc:
            raise ConfigError(f"{source}: key alerts.command: {exc}") from None
        if not words:
            raise ConfigError(f"{source}: key alerts.command: expected a command, got an "
                              "empty line")


def _check_monitor(config: Config, source: str) -> None:
    if not 0 <= config.monitor.drift_share <= 1:
        raise ConfigError(f"{source}: key monitor.drift_share: expected 0 to 1, got "
                          f"{config.monitor.drift_share}")
    for method, rows in config.monitor.min_rows.items():
        if rows < 1:
            raise ConfigError(f"{source}: key monitor.min_rows.{method}: expected at least "
                              f"1 row, got {rows}")


def _check_automation(config: Config, source: str) -> None:
    for key in ("settle_seconds", "debounce_seconds", "misfire_grace_seconds"):
        if getattr(config.automation, key) < 0:
            raise ConfigError(f"{source}: key automation.{key}: expected 0 or more seconds")
    seen: set[str] = set()
    for index, entry in enumerate(config.schedule):
        where = f"{source}: [[schedule]] {entry.name!r} (entry {index + 1})"
        if entry.name in seen:
            raise ConfigError(f"{where}: the name is used twice; names must be unique")
        seen.add(entry.name)
        if (entry.cron is None) == (entry.every is None):
            raise ConfigError(f"{where}: set exactly one of `cron` or `every`")
