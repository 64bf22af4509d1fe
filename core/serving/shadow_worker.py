"""The shadow's own process (`shadow.Shadow` starts it): reads answered requests from
standard input, scores each with the shadow model, and logs one record per request of
both models' outputs and scoring times (`mlyard.storage.shadow_files`). A request the
shadow cannot score (a feature it needs that the champion does not) is recorded with
why. It reports its version and counts to the server on a pipe, a JSON line at a time.

    python -m mlyard.core.serving.shadow_worker WORKSPACE CONFIG REF POLL REPORT_FD
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import IO

import orjson
import pyarrow as pa

from mlyard.core.serving.model_holder import ModelHolder
from mlyard.core.serving.prediction_log import PredictionLog, ShadowRecord
from mlyard.core.serving.request import ScoringRejected
from mlyard.core.serving.scoring import Scored, score_rows
from mlyard.core.serving.shadow import read_frame
from mlyard.core.workspace import open_workspace

log = logging.getLogger("mlyard.serve")

REPORT_EVERY = 0.2  # seconds between reports while the counts change


class ShadowScorer:
    """Scores answered requests with the model `holder` serves."""

    def __init__(self, holder: ModelHolder) -> None:
        self.holder = holder
        self.scored = 0
        self.failed = 0

    def score(self, header: dict[str, object], body: bytes) -> ShadowRecord:
        """One answered request scored by the shadow, as the record to log."""
        model, reader = self.holder.serving
        started = time.perf_counter()
        result = score_rows(body, str(header["content_type"]), model, reader,
                            may_explain=False)
        seconds = time.perf_counter() - started
        if isinstance(result, ScoringRejected):
            self.failed += 1
            outputs, ids, error = None, None, result.msg
        else:
            self.scored += 1
            outputs, error = orjson.dumps(result.values).decode(), None
            ids = _ids(result, self.holder.ws.config.data.id_column)
        return (str(header["request_id"]), float(header["ts"]),  # type: ignore[arg-type]
                str(header["model"]), int(header["champion_version"]),  # type: ignore[call-overload]
                model.version.version, int(header["rows"]),  # type: ignore[call-overload]
                ids, str(header["champion_outputs"]), outputs,
                float(header["champion_seconds"]), seconds, error)  # type: ignore[arg-type]


def _ids(scored: Scored, id_column: str | None) -> str | None:
    """The request's row ids as a JSON array, when it sent the id column (the first of
    the keys the log keeps, when there is one)."""
    if id_column is None:
        return None
    values = scored.keys[0]
    sent = values.to_pylist() if isinstance(values, pa.Array) else values
    if all(value is None for value in sent):
        return None
    return orjson.dumps(sent).decode()


def serve_shadow(scorer: ShadowScorer, log_to: PredictionLog, requests: IO[bytes],
                 reports: IO[bytes]) -> None:
    """Score every request on `requests` until it ends, reporting on `reports`."""
    done = threading.Event()

    def report() -> None:
        reports.write(orjson.dumps({"version": scorer.holder.current.version.version,
                                    "scored": scorer.scored, "failed": scorer.failed}) + b"\n")
        reports.flush()

    def keep_reporting() -> None:
        last = None
        while not done.wait(REPORT_EVERY):
            now = (scorer.holder.current.version.version, scorer.scored, scorer.failed)
            if now != last:
                report()
                last = now

    report()  # ready: the model is loaded
    reporter = threading.Thread(target=keep_reporting, name="mlyard-shadow-report",
                                daemon=True)
    reporter.start()
    try:
        while (request := read_frame(requests)) is not None:
            try:
                log_to.add_shadow(scorer.score(*request))
            except Exception:  # one request must not end the shadow; say why, go on
                scorer.failed += 1
                log.exception("shadow %s could not score request %s", scorer.holder.ref,
                              request[0].get("request_id"))
    finally:
        done.set()
        reporter.join()
        log_to.close()
        report()


NICENESS = 10  # the champion's process gets the cores first when both want them


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    os.nice(NICENESS)
    root, config, ref, poll, report_fd = sys.argv[1:6]
    ws = open_workspace(workspace=Path(root), config_path=Path(config), register=False)
    holder = ModelHolder(ws, ref, float(poll))
    holder.start()
    # The server's own log compacts and drops old days; two processes doing it at once
    # would race, so this one only writes.
    log_to = PredictionLog(ws.catalog, enabled=False, housekeeping_interval=None)
    log_to.start()
    with os.fdopen(int(report_fd), "wb") as reports:
        serve_shadow(ShadowScorer(holder), log_to, sys.stdin.buffer, reports)
    holder.stop()


if __name__ == "__main__":
    main()
