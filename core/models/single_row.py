"""One row scored through LightGBM's fast single-row C API.

`Booster.predict` builds a predictor, its parameter string and its output buffers on
every call: ~45 µs of a one-row request's ~55 (bench/bench_serve.py), most of what a
scoring server spends per request. LightGBM's C API has a variant made for this case
(`LGBM_BoosterPredictForMatSingleRowFast`, which LightGBM's R package exposes as
`lgb.configure_fast_predict`): the configuration is prepared once per model and each call
only walks the trees. The Python package does not wrap it, so it is called here through
the library the package has loaded. Where that is not possible (a LightGBM whose Python
internals differ), `for_booster` returns None and the caller keeps `Booster.predict`.
"""

from __future__ import annotations

import ctypes
import threading
import weakref
from typing import Any

import lightgbm as lgb
import numpy as np

_PREDICT_NORMAL = 0  # C_API_PREDICT_NORMAL: with the objective's transform, as predict()
_FLOAT64 = 1  # C_API_DTYPE_FLOAT64


class SingleRowPredictor:
    """Scores one row of float64 features exactly as `booster.predict(row, num_threads=1)`
    would. Safe to share between threads (calls take turns: one row is microseconds)."""

    def __init__(self, booster: lgb.Booster, library: Any, config: ctypes.c_void_p) -> None:
        self._booster = booster  # the configuration reads the booster: it must outlive it
        self._library = library
        self._predict = library.LGBM_BoosterPredictForMatSingleRowFast
        self._config = config
        self.features = booster.num_feature()
        self.outputs = booster.num_model_per_iteration()
        self._result = np.empty(self.outputs, dtype=np.float64)
        self._result_pointer = self._result.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        self._length = ctypes.c_int64()
        self._length_pointer = ctypes.byref(self._length)
        self._lock = threading.Lock()
        weakref.finalize(self, library.LGBM_FastConfigFree, config)

    @classmethod
    def for_booster(cls, booster: lgb.Booster) -> SingleRowPredictor | None:
        library = getattr(lgb.basic, "_LIB", None)
        handle = getattr(booster, "_handle", None)
        if library is None or handle is None or not hasattr(
                library, "LGBM_BoosterPredictForMatSingleRowFastInit"):
            return None
        # The iterations predict() uses by default: the best one when the model has it.
        iterations = booster.best_iteration if booster.best_iteration > 0 else -1
        config = ctypes.c_void_p()
        status = library.LGBM_BoosterPredictForMatSingleRowFastInit(
            handle, ctypes.c_int(_PREDICT_NORMAL), ctypes.c_int(0), ctypes.c_int(iterations),
            ctypes.c_int(_FLOAT64), ctypes.c_int32(booster.num_feature()),
            ctypes.c_char_p(b"num_threads=1"), ctypes.byref(config))
        return cls(booster, library, config) if status == 0 else None

    def predict(self, row: np.ndarray) -> np.ndarray:
        """The prediction for one row (`features` float64 values), shaped as predict()
        shapes one row's: (1,) or, for several classes, (1, classes)."""
        values = np.ascontiguousarray(row, dtype=np.float64)
        if values.size != self.features:
            raise ValueError(f"expected {self.features} feature values, got {values.size}")
        with self._lock:
            status = self._predict(self._config, values.ctypes.data_as(ctypes.c_void_p),
                                   self._length_pointer, self._result_pointer)
            if status != 0:
                raise lgb.basic.LightGBMError(self._library.LGBM_GetLastError().decode())
            result = self._result.copy()
        return result.reshape(1, -1) if self.outputs > 1 else result
