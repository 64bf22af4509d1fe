"""A shadow model: a second version that scores every request the champion answered,
after the answer has gone out, so it can be judged on live traffic before it serves.

Requests reach it through a bounded queue and one thread. When it falls behind, new
requests are dropped and counted, never queued without bound and never waited for: the
champion's latency is the one that matters. Each scored request becomes one record of
both models' outputs and scoring times (`mlyard.storage.shadow_files`); a request the
shadow cannot score (a feature it needs that the champion does not) is recorded with why.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

import orjson
import polars as pl

from mlyard.core.models.loading import LoadedModel
from mlyard.core.serving.model_holder import ModelHolder
from mlyard.core.serving.prediction_log import PredictionLog, ShadowRecord
from mlyard.core.serving.request import ScoringRejected
from mlyard.core.serving.row_reader import RowReader
from mlyard.core.serving.scoring import Scored, score_rows

log = logging.getLogger("mlyard.serve")

QUEUE_SIZE = 1024  # requests waiting for the shadow; more are dropped and counted


@dataclass(frozen=True)
class Answered:
    """A request the champion answered, as the shadow needs it."""

    request_id: str
    ts: float
    body: bytes
    content_type: str
    champion: LoadedModel
    rows: int
    champion_outputs: str  # JSON, as answered
    champion_seconds: float


class Shadow:
    """Scores answered requests with the model `holder` serves, off the request path."""

    def __init__(self, holder: ModelHolder, log_to: PredictionLog,
                 queue_size: int = QUEUE_SIZE) -> None:
        self.holder = holder
        self.log_to = log_to
        self.scored = 0
        self.failed = 0  # requests the shadow could not score
        self.dropped = 0  # requests it was too far behind to take
        self._queue: queue.Queue[Answered | None] = queue.Queue(queue_size)
        self._thread = threading.Thread(target=self._work, name="mlyard-shadow", daemon=True)

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def offer(self, answered: Answered) -> None:
        try:
            self._queue.put_nowait(answered)
        except queue.Full:
            self.dropped += 1

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Score what is queued, then end the thread."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _work(self) -> None:
        while (answered := self._queue.get()) is not None:
            try:
                self.log_to.add_shadow(self.score(answered))
            except Exception:  # a shadow never takes the server down; say why, go on
                self.failed += 1
                log.exception("shadow %s could not score request %s", self.holder.ref,
                              answered.request_id)
            # Hand the interpreter back between requests, so the event loop answering the
            # champion's requests waits for one shadow request at most, not a backlog.
            time.sleep(0)

    def score(self, answered: Answered) -> ShadowRecord:
        """One request scored by the shadow, as the record to log."""
        model, reader = self.holder.serving
        started = time.perf_counter()
        result = score_rows(answered.body, answered.content_type, model, reader,
                            may_explain=False)
        seconds = time.perf_counter() - started
        champion = answered.champion.version
        if isinstance(result, ScoringRejected):
            self.failed += 1
            outputs, ids, error = None, None, result.msg
        else:
            self.scored += 1
            outputs, error = orjson.dumps(result.values).decode(), None
            ids = _ids(result, reader)
        return (answered.request_id, answered.ts, champion.model, champion.version,
                model.version.version, answered.rows, ids, answered.champion_outputs, outputs,
                answered.champion_seconds, seconds, error)


def _ids(scored: Scored, reader: RowReader) -> str | None:
    """The request's row ids as a JSON array, when it sent the id column."""
    id_column = reader.id_column
    if id_column is None:
        return None
    inputs = scored.inputs
    if isinstance(inputs, pl.DataFrame):
        if id_column not in inputs.columns:
            return None
        values = inputs.get_column(id_column).to_list()
    else:
        rows = orjson.loads(inputs)
        if not rows or id_column not in rows[0]:
            return None
        values = [row.get(id_column) for row in rows]
    return orjson.dumps([None if v is None else str(v) for v in values]).decode()
