"""`mlyard serve`: a model behind MLflow's scoring protocol, on uvicorn.

Scoring has its own bare handler (`invocations`); the other paths are Starlette routes;
the gate in front checks Host and token for all of them.

The model being served is swapped atomically when its alias moves (from any process):
a background thread notices the move, loads and verifies the new version, and replaces
one reference, so a request is always answered by one whole model (`model_holder`).
Every scored row goes to the prediction log without waiting on the catalog. With a
shadow, a second version scores each answered request after the answer, in its own
process (`shadow`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import logging
import os
import socket
from collections.abc import AsyncIterator, Sequence
from importlib import metadata
from typing import Any

import anyio
import msgspec
import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mlyard.core.errors import UsageError
from mlyard.core.serving.gate import Gate
from mlyard.core.serving.health_alarm import HealthAlarm
from mlyard.core.serving.invocations import Invocations
from mlyard.core.serving.model_holder import ModelHolder
from mlyard.core.serving.prediction_log import PredictionLog
from mlyard.core.serving.shadow import Shadow
from mlyard.core.workspace import Workspace, open_workspace

log = logging.getLogger("mlyard.serve")

DEFAULT_MAX_BODY = 10 * 1024 * 1024
# Host headers answered by default: a web page on another site that resolves its own name
# to 127.0.0.1 (DNS rebinding) gets 400 instead of reaching a tokenless local server.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
SCORING_THREADS = 4  # requests scored at once, off the event loop
MAX_QUEUED = 64  # requests waiting for a scoring thread before new ones get 503
BODY_TIMEOUT = 30.0  # seconds to receive a whole body (a slow sender is cut off: 408)
HEADER_TIMEOUT = 10.0  # seconds to receive a request's headers (then the socket closes)


def create_app(ws: Workspace, ref: str, token: str | None = None,
               max_body: int = DEFAULT_MAX_BODY, poll_interval: float = 1.0,
               log_predictions: bool = True, allowed_hosts: Sequence[str] = (),
               body_timeout: float = BODY_TIMEOUT, scoring_threads: int = SCORING_THREADS,
               max_queued: int = MAX_QUEUED, shadow_ref: str | None = None) -> Gate:
    """The scoring app for model `ref` (a version or an alias).

    Args:
        shadow_ref: a version or alias that also scores every answered request, off the
            request path, for `mlyard shadow report`; it follows its alias as `ref` does.
        allowed_hosts: Host header values answered besides the loopback names ("*" for
            any: only behind a proxy that checks them).
        scoring_threads: requests scored at once, in threads, so a large request never
            holds up the event loop that small ones are answered on.
        max_queued: requests waiting for a thread beyond which new ones get 503.
    """
    holder = ModelHolder(ws, ref, poll_interval)
    predictions = PredictionLog(ws.catalog, enabled=log_predictions,
                                keep_seconds=ws.config.serve.keep_seconds, keys=holder.keys)
    holder.also.append(HealthAlarm(ws, holder.ref, predictions).check)
    shadow = None
    if shadow_ref is not None:
        shadow = Shadow(ws, shadow_ref, poll_interval)
    stats = _Stats()

    async def ping(request: Request) -> Response:
        return PlainTextResponse("\n")

    async def version(request: Request) -> Response:
        return PlainTextResponse(metadata.version("mlyard"))

    async def model_metadata(request: Request) -> Response:
        model = holder.current
        return _json({"model": model.version.model, "version": model.version.version,
                      "ref": ref, "run_id": model.version.run_id,
                      "features": msgspec.to_builtins(model.card.spec.features),
                      "task": model.card.task, "metrics": model.card.metrics})

    async def health(request: Request) -> Response:
        """Alive and serving; `degraded` while logged predictions cannot be written or
        the shadow's worker is stuck."""
        degraded = predictions.failures > 0 or predictions.dropped > 0 or (
            shadow is not None and shadow.stuck)
        answer: dict[str, Any] = {"status": "degraded" if degraded else "ok",
                                  "model_version": holder.current.version.version,
                                  "prediction_log": {"pending": predictions.pending,
                                                     "dropped": predictions.dropped,
                                                     "last_error": predictions.last_error}}
        if shadow is not None:
            answer["shadow"] = {"ref": shadow.ref, "model_version": shadow.version,
                                "alive": shadow.alive, "stuck": shadow.stuck,
                                "scored": shadow.scored, "failed": shadow.failed,
                                "dropped": shadow.dropped, "queued": shadow.queued}
        return _json(answer)

    async def metrics(request: Request) -> Response:
        stats.model_version.set(holder.current.version.version)
        stats.log_pending.set(predictions.pending)
        stats.log_dropped.set(predictions.dropped)
        stats.log_failures.set(predictions.failures)
        if shadow is not None:
            stats.shadow_scored.set(shadow.scored)
            stats.shadow_failed.set(shadow.failed)
            stats.shadow_dropped.set(shadow.dropped)
        return Response(generate_latest(stats.registry),
                        media_type="text/plain; version=0.0.4; charset=utf-8")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        holder.start()
        predictions.start()
        if shadow is not None:
            await anyio.to_thread.run_sync(shadow.start)  # until its model is loaded
        # Everything loaded so far (libraries, the model) lives as long as the server:
        # out of the garbage collector's sight, a full collection takes a fraction of a
        # millisecond instead of the tens that showed as the log-on p99.
        gc.freeze()
        try:
            yield
        finally:
            holder.stop()
            if shadow is not None:
                await anyio.to_thread.run_sync(shadow.stop)
            predictions.close()

    routes = Starlette(routes=[
        Route("/ping", ping, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
        Route("/metadata", model_metadata, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ], lifespan=lifespan)
    routes.state.holder = holder
    routes.state.predictions = predictions
    routes.state.shadow = shadow
    invocations = Invocations(holder, predictions, stats.observe, max_body, body_timeout,
                              anyio.CapacityLimiter(scoring_threads), max_queued, shadow)
    return Gate(routes, invocations, [*LOOPBACK_HOSTS, *allowed_hosts], token)


class HeaderTimeoutHttp(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol on httptools (llhttp, in C), plus a deadline for a
    request's headers: uvicorn keeps a connection that trickles header bytes open
    indefinitely, so a few slow sockets could hold every connection slot. Also turns
    Nagle's algorithm off on each connection. Pass as `uvicorn.run(..., http=...)`.

    httptools and uvloop (which uvicorn picks up when installed) took single-row
    throughput from ~3,900 to ~6,200 req/s; h11 parsing in Python was the limit
    (bench/bench_serve.py)."""

    header_timeout = HEADER_TIMEOUT
    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # Workers share a socket uvicorn binds itself, and asyncio then leaves Nagle on
            # for what they accept: with the client's delayed ACK, ~40 ms per response.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._arm_header_deadline()

    def on_headers_complete(self) -> None:
        self._disarm()  # the headers are in; the body has its own timeout
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_header_deadline()  # the next request on this connection gets one too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(self.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _too_slow(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()


class _Stats:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("mlyard_requests", "Scoring requests by status",
                                ["status"], registry=self.registry)
        self.latency = Histogram("mlyard_request_latency_seconds",
                                 "Scoring latency by status", ["status"],
                                 registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                          0.5, 1.0))
        self.rows = Counter("mlyard_predictions", "Rows scored", registry=self.registry)
        self._by_status: dict[int, tuple[Any, Any]] = {}
        self.model_version = Gauge("mlyard_model_version", "Model version being served",
                                   registry=self.registry)
        self.log_pending = Gauge("mlyard_prediction_log_pending",
                                 "Logged requests waiting to be written",
                                 registry=self.registry)
        self.log_dropped = Gauge("mlyard_prediction_log_dropped_total",
                                 "Logged requests given up after writes kept failing",
                                 registry=self.registry)
        self.log_failures = Gauge("mlyard_prediction_log_failures",
                                  "Prediction log writes that failed in a row",
                                  registry=self.registry)
        self.shadow_scored = Gauge("mlyard_shadow_scored_total",
                                   "Requests the shadow model scored", registry=self.registry)
        self.shadow_failed = Gauge("mlyard_shadow_failed_total",
                                   "Requests the shadow model could not score",
                                   registry=self.registry)
        self.shadow_dropped = Gauge("mlyard_shadow_dropped_total",
                                    "Requests dropped while the shadow was behind",
                                    registry=self.registry)

    def observe(self, status: int, seconds: float, rows: int) -> None:
        children = self._by_status.get(status)
        if children is None:  # a label lookup per request was ~4% of a small one
            children = self._by_status[status] = (self.requests.labels(str(status)),
                                                   self.latency.labels(str(status)))
        children[0].inc()
        children[1].observe(seconds)
        if rows:
            self.rows.inc(rows)


def _json(value: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status,
                    media_type="application/json")


def check_binding(host: str, token: str | None, insecure: bool) -> None:
    """Anything but loopback needs a token, or an explicit --insecure."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not token and not insecure:
        raise UsageError(f"binding {host} exposes the model beyond this machine: pass "
                         "--token TOKEN (clients send Authorization: Bearer TOKEN) or "
                         "--insecure")


def app_from_env() -> Gate:
    """For `uvicorn --factory` with several workers: the app configured by environment."""
    ws = open_workspace(config_path=None)
    hosts = os.environ.get("MLYARD_SERVE_ALLOWED_HOSTS", "")
    return create_app(ws, os.environ["MLYARD_SERVE_MODEL"],
                      token=os.environ.get("MLYARD_SERVE_TOKEN") or None,
                      max_body=int(os.environ.get("MLYARD_SERVE_MAX_BODY", DEFAULT_MAX_BODY)),
                      allowed_hosts=[h for h in hosts.split(",") if h],
                      shadow_ref=os.environ.get("MLYARD_SERVE_SHADOW") or None)
