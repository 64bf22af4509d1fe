"""The floor for `bench/bench_serve.py`: the least a LightGBM scoring server can do.

Starlette, orjson and `Booster.predict` on the same model and rows as `mlyard serve`: a
`dataframe_records` body turned into the booster's matrix with precompiled category
maps, one thread per predict, and nothing else (no validation, no log, no metrics).

    BARE_MODEL=model.txt BARE_SPEC=spec.json uvicorn bench.bare_predict_app:app
"""

from __future__ import annotations

import json
import os

import lightgbm as lgb
import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

booster = lgb.Booster(model_file=os.environ["BARE_MODEL"])
spec = json.loads(open(os.environ["BARE_SPEC"]).read())  # noqa: SIM115
names = [f["name"] for f in spec["features"]]
codes = {f["name"]: {level: float(i) for i, level in enumerate(f["categories"] or [])}
         for f in spec["features"] if f["type"] == "category"}


async def invocations(request: Request) -> Response:
    rows = orjson.loads(await request.body())["dataframe_records"]
    matrix = np.array([[codes[n].get(row[n], np.nan) if n in codes else
                        (np.nan if row[n] is None else float(row[n])) for n in names]
                       for row in rows], dtype=np.float64)
    output = booster.predict(matrix, num_threads=1)
    return Response(orjson.dumps({"predictions": output.tolist()}),
                    media_type="application/json")


async def ping(request: Request) -> Response:
    return Response("")


app = Starlette(routes=[Route("/invocations", invocations, methods=["POST"]),
                        Route("/ping", ping)])
