"""The raw floors for `bench/bench_serve.py`: what a bare Python server on uvicorn
(httptools, uvloop) can do, with no framework at all.

`app`: raw ASGI; the body parsed with orjson; one row scored by LightGBM's single-row
fast predict (the C API `mlyard serve` also uses), more rows by `Booster.predict` on
one thread; no validation, no log, no metrics. `http_only`: the same server answering
a constant, the ceiling of HTTP on this machine.

    BARE_MODEL=model.txt BARE_SPEC=spec.json uvicorn bench.raw_floor_app:app \
        --http httptools --loop uvloop
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import lightgbm as lgb
import numpy as np
import orjson

from mlyard.core.models.single_row import SingleRowPredictor

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

HEADERS = [(b"content-type", b"application/json")]
CONSTANT = orjson.dumps({"predictions": [0.5]})


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _answer(send: Send, body: bytes) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": body})


class _Model:
    def __init__(self) -> None:
        self.booster = lgb.Booster(model_file=os.environ["BARE_MODEL"])
        spec = json.loads(open(os.environ["BARE_SPEC"]).read())  # noqa: SIM115
        self.names = [f["name"] for f in spec["features"]]
        self.codes = {f["name"]: {level: float(i) for i, level in enumerate(f["categories"])}
                      for f in spec["features"] if f["type"] == "category"}
        self.single = SingleRowPredictor.for_booster(self.booster)

    def score(self, rows: list[dict[str, Any]]) -> list[float]:
        matrix = np.array([[self.codes[n].get(row[n], np.nan) if n in self.codes else
                            (np.nan if row[n] is None else float(row[n])) for n in self.names]
                           for row in rows], dtype=np.float64)
        if len(rows) == 1 and self.single is not None:
            return [float(v) for v in self.single.predict(matrix[0]).ravel()]
        output: list[float] = self.booster.predict(matrix, num_threads=1).tolist()
        return output


_model = _Model()


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/ping":
        await _body(receive)
        await _answer(send, b"")
        return
    rows = orjson.loads(await _body(receive))["dataframe_records"]
    await _answer(send, orjson.dumps({"predictions": _model.score(rows)}))


async def http_only(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    await _body(receive)
    await _answer(send, CONSTANT)
