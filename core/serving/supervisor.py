"""Running `mlyard serve` as a child process and reading its live figures, for the UI.

The server is its own process (as it would be in production), so the UI only starts,
stops and watches it: figures come from its `/metrics` endpoint and the last
predictions from the catalog's prediction log.
"""

from __future__ import annotations

import json
import socket
import subprocess
from dataclasses import dataclass

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from mlyard.core.errors import MlyardError, UsageError
from mlyard.core.models import registry
from mlyard.core.models.explain import explain_matrix
from mlyard.core.models.features import encode
from mlyard.core.models.loading import load_model
from mlyard.core.processes import mlyard_command
from mlyard.core.serving.detached import get_local, wait_answering
from mlyard.core.serving.request import JsonRows, rows_frame, typed_features
from mlyard.core.workspace import Workspace
from mlyard.storage import prediction_files


@dataclass
class ServerStats:
    requests: float
    errors: float  # answers other than 200
    rows: float
    model_version: int | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


class ServerProcess:
    """One `mlyard serve` child bound to 127.0.0.1."""

    def __init__(self, ws: Workspace, ref: str, port: int | None = None) -> None:
        ws.check_writable(f"start a server for {ref}")
        registry.resolve(ws, ref)  # fail here, with the reason, on a bad reference
        self.ref = ref
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process = subprocess.Popen(
            mlyard_command("--workspace", str(ws.root), "serve", ref, "--port", str(self.port)),
            cwd=ws.project_dir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def wait_ready(self, timeout: float = 30.0) -> None:
        def exited() -> str | None:
            if self._process.poll() is None:
                return None
            error = self._process.stderr.read().decode(errors="replace").strip() \
                if self._process.stderr else ""
            return error.splitlines()[-1] if error else ""

        wait_answering(self.url, exited, timeout)

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    def stop(self) -> None:
        if self.alive:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


def fetch_stats(url: str) -> ServerStats:
    """Counts and latency percentiles from a server's Prometheus endpoint."""
    try:
        text = get_local(f"{url}/metrics", timeout=2)
    except OSError as exc:
        raise MlyardError(f"{url}: no answer from /metrics ({exc})") from None
    requests = errors = rows = 0.0
    version: int | None = None
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "mlyard_requests_total":
                requests += sample.value
                if sample.labels.get("status") != "200":
                    errors += sample.value
            elif sample.name == "mlyard_predictions_total":
                rows = sample.value
            elif sample.name == "mlyard_model_version":
                version = int(sample.value)
            elif sample.name == "mlyard_request_latency_seconds_bucket":
                bound = float(sample.labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + sample.value
    return ServerStats(requests, errors, rows, version, *(
        _percentile(buckets, q) for q in (0.5, 0.95, 0.99)))


@dataclass(frozen=True)
class LoggedRequest:
    """One logged request, as the Serving screen lists it."""

    request_id: str
    ts: float
    version: int
    rows: int
    inputs: str  # the request's rows as JSON
    outputs: str  # its predictions as JSON


@dataclass(frozen=True)
class ServingView:
    """The Serving screen's reading: the server's figures and its newest requests."""

    stats: ServerStats
    predictions: list[LoggedRequest]


def serving_view(ws: Workspace, url: str, limit: int = 20) -> ServingView:
    return ServingView(fetch_stats(url), recent_predictions(ws, limit))


def recent_predictions(ws: Workspace, limit: int = 20) -> list[LoggedRequest]:
    """The newest logged requests, newest first."""
    return [LoggedRequest(*row) for row in prediction_files.recent(
        ws.catalog.predictions_dir, registry.model_name(ws), limit)]


@dataclass(frozen=True)
class LoggedExplanation:
    """Why a logged request's first row scored as it did, for the Serving screen."""

    contributions: dict[str, float]  # feature -> its push on the raw score
    base_value: float
    output: str | None  # the class explained (the one predicted) for a multiclass model
    values: dict[str, object]  # the row's feature values, as logged (any JSON)
    rows: int  # rows in the request; the first is explained


def explain_logged(ws: Workspace, version: int, inputs: str) -> LoggedExplanation:
    """Explain the first row of a logged request with the model version that scored it,
    read back by the rules the server used (core/data/values.py)."""
    try:
        rows = json.loads(inputs)
    except ValueError:
        rows = None
    if not isinstance(rows, list) or not rows or not isinstance(rows[0], dict):
        raise UsageError("this logged request's inputs are not rows of named values")
    model = load_model(ws, str(version))
    frame = typed_features(rows_frame(JsonRows.of(rows[:1]), model.spec.names), model.spec)
    explained = explain_matrix(model, encode(frame, model.spec))
    index = 0
    if explained.outputs is not None:
        index = int(np.argmax(explained.raw_scores()[0]))
    return LoggedExplanation(
        dict(zip(explained.features, explained.contributions[0, index].tolist(), strict=True)),
        float(explained.base_value[index]),
        explained.outputs[index] if explained.outputs is not None else None,
        {name: rows[0].get(name) for name in model.spec.names}, len(rows))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _percentile(buckets: dict[float, float], quantile: float) -> float | None:
    """Milliseconds at `quantile`, interpolated within the histogram's buckets."""
    ordered = sorted(buckets.items())
    total = ordered[-1][1] if ordered else 0.0
    if not total:
        return None
    wanted = quantile * total
    lower, below = 0.0, 0.0
    for bound, count in ordered:
        if count >= wanted:
            if bound == float("inf"):
                return lower * 1000
            share = (wanted - below) / (count - below) if count > below else 1.0
            return (lower + (bound - lower) * share) * 1000
        lower, below = bound, count
    return lower * 1000
