"""POST /invocations: read, check, score, answer and log a request, with nothing between.

Written on bare ASGI because it is the path every prediction takes: Starlette's request,
response, routing and middleware objects cost as much as scoring one row, and a raw
server doing the same scoring answered twice as many single-row requests
(bench/bench_serve.py, the raw floor). Every check stays: Host and token in the gate in
front, the body's size limit and deadline, the model's validation, a bounded queue for
large requests, the prediction log, and the shadow, handed its copy after the answer.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import anyio
import orjson

from mlyard.core.serving.asgi import Receive, Scope, Send, error_body, header, respond
from mlyard.core.serving.model_holder import ModelHolder
from mlyard.core.serving.prediction_log import PredictionLog
from mlyard.core.serving.request import ScoringRejected
from mlyard.core.serving.scoring import Scored, score_rows
from mlyard.core.serving.shadow import Answered, Shadow

INLINE_BODY = 32_768  # bytes: a body this small (up to ~250 rows) is scored on the event loop
# Request ids: unique per process start plus a counter (uuid4 read the OS's random source
# for every request, ~2% of a small one).
_ID_PREFIX = secrets.token_hex(10)
_request_numbers = itertools.count()


class _Refused(Exception):
    """An answer other than predictions: its status, message and MLflow error code."""

    def __init__(self, status: int, message: str, code: str = "BAD_REQUEST") -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


@dataclass
class Invocations:
    """The scoring handler; `observe(status, seconds, rows)` feeds /metrics."""

    holder: ModelHolder
    predictions: PredictionLog
    observe: Callable[[int, float, int], None]
    max_body: int
    body_timeout: float
    limiter: anyio.CapacityLimiter  # scoring threads for large bodies
    max_queued: int  # large requests waiting for a thread before new ones get 503
    shadow: Shadow | None
    waiting: int = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        try:
            if scope["method"] != "POST":
                raise _Refused(405, "/invocations takes POST", "METHOD_NOT_ALLOWED")
            body = await self._body(scope, receive)
            if body is None:  # the client went away
                return
            answered = await self._score(scope, body, send)
        except _Refused as refused:
            await respond(send, refused.status, error_body(refused.message, refused.code),
                          [(b"allow", b"POST")] if refused.status == 405 else ())
            self.observe(refused.status, time.perf_counter() - started, 0)
            return
        self.observe(200, time.perf_counter() - started, answered.rows)
        if self.shadow is not None:  # handed over once the answer is out, never before
            self.shadow.offer(answered)

    async def _body(self, scope: Scope, receive: Receive) -> bytes | None:
        declared = header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            raise _Refused(413, f"body of {declared.decode()} bytes is over the limit of "
                                f"{self.max_body}")
        chunks: list[bytes] = []
        size = 0
        # The deadline as one timer that cancels this task: `asyncio.timeout` did the same
        # with more bookkeeping, 7 µs of a one-row request's ~190.
        task = asyncio.current_task()
        assert task is not None  # an ASGI app runs in a task
        expired: list[bool] = []
        deadline = asyncio.get_running_loop().call_later(self.body_timeout, _expire, task,
                                                         expired)
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return None
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_body:
                    raise _Refused(413, f"body is over the limit of {self.max_body} bytes")
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        except asyncio.CancelledError:
            if expired and task.uncancel() == 0:  # ours alone, not the server stopping
                raise _Refused(408, f"the request body did not arrive within "
                                    f"{self.body_timeout:g}s", "REQUEST_TIMEOUT") from None
            raise
        finally:
            deadline.cancel()

    async def _score(self, scope: Scope, body: bytes, send: Send) -> Answered:
        if self.waiting >= self.max_queued:
            raise _Refused(503, "the server is busy scoring other requests; retry shortly",
                           "TEMPORARILY_UNAVAILABLE")
        model, reader = self.holder.serving  # one model for the whole request, even mid-swap
        content_type = (header(scope, b"content-type") or b"").decode("latin-1")
        started = time.perf_counter()
        if len(body) <= INLINE_BODY:
            # A few rows score in ~0.1 ms: less than handing them to a thread and back.
            result = score_rows(body, content_type, model, reader)
        else:
            self.waiting += 1
            try:
                result = await anyio.to_thread.run_sync(score_rows, body, content_type, model,
                                                        reader, limiter=self.limiter)
            finally:
                self.waiting -= 1
        if isinstance(result, ScoringRejected):
            raise _Refused(result.status, result.msg, result.error_code)
        seconds = time.perf_counter() - started
        request_id = f"{_ID_PREFIX}{next(_request_numbers):012x}"
        version = model.version
        outputs = orjson.dumps(result.values)
        text = outputs.decode()
        now = time.time()
        rows = len(result.values)
        self.predictions.add([(request_id, now, version.model, version.version, rows,
                               result.inputs, text, result.keys)])
        await respond(send, 200, _answer(outputs, result), [
            (b"x-request-id", request_id.encode()), (b"x-mlyard-rows", str(rows).encode()),
            (b"x-mlyard-model-version", str(version.version).encode())])
        return Answered(request_id, now, body, content_type, version.model, version.version,
                        rows, text, seconds)


def _expire(task: asyncio.Task[None], expired: list[bool]) -> None:
    expired.append(True)
    task.cancel()


def _answer(outputs: bytes, result: Scored) -> bytes:
    if result.explanations is None:
        return b'{"predictions":' + outputs + b"}"
    return orjson.dumps({"predictions": result.values, **result.explanations})
