"""Training on a GPU: LightGBM's OpenCL learner, tried in a child process before a run
starts.

The PyPI wheel of LightGBM carries the OpenCL learner on Linux but no OpenCL runtime:
without one, or with a broken driver, LightGBM fails deep inside training, and a broken
driver can take the process down with it. So before the first GPU run of a process, a
child lists the OpenCL platforms and devices (through the system's ICD loader,
libOpenCL.so.1) and trains a tiny model on the chosen device; what it finds becomes one
clear line, and the device's name goes into the run (tag `mlyard.device`).
"""

from __future__ import annotations

import functools
import json
import signal
import subprocess
import sys
from typing import Any

from mlyard.core.config import TrainConfig
from mlyard.core.errors import UsageError

DEVICE_TAG = "mlyard.device"

# The first use of a device compiles LightGBM's kernels (PoCL: ~20 s; cached after).
PROBE_TIMEOUT = 600.0

INSTALL_HINT = ("install the OpenCL runtime for your GPU (its driver's ICD: "
                "nvidia-opencl-icd, mesa-opencl-icd, intel-opencl-icd), or pocl-opencl-icd "
                "to run the GPU learner on the CPU")


def device_params(train: TrainConfig) -> dict[str, Any]:
    """The LightGBM parameters that choose the device."""
    if train.device == "cpu":
        return {"device_type": "cpu"}
    params: dict[str, Any] = {"device_type": "gpu"}
    if train.gpu_platform_id is not None:
        params["gpu_platform_id"] = train.gpu_platform_id
    if train.gpu_device_id is not None:
        params["gpu_device_id"] = train.gpu_device_id
    return params


def wants_gpu(params: dict[str, Any]) -> bool:
    """Whether LightGBM params (mlyard's, or a user's `device` alias) ask for the GPU."""
    return str(params.get("device_type", params.get("device", "cpu"))).lower() == "gpu"


def describe(params: dict[str, Any]) -> str:
    """What a run trained on: `cpu`, or `gpu: <device> (<platform>)` after the probe."""
    if not wants_gpu(params):
        return "cpu"
    return "gpu: " + probe(int(params.get("gpu_platform_id", -1)),
                           int(params.get("gpu_device_id", -1)))


@functools.cache
def probe(platform_id: int = -1, device_id: int = -1) -> str:
    """The chosen OpenCL device's name, once it has trained a tiny model in a child
    process; raise UsageError saying what is missing otherwise."""
    try:
        child = subprocess.run(
            [sys.executable, "-m", "mlyard.core.training.gpu_probe", str(platform_id),
             str(device_id)], capture_output=True, timeout=PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise UsageError(f"[train] device = \"gpu\": trying the GPU learner took over "
                         f"{PROBE_TIMEOUT:g} s; is the OpenCL device busy or hung?") from None
    if child.returncode < 0:
        raise UsageError(f"[train] device = \"gpu\": the OpenCL runtime killed the process "
                         f"that tried it ({signal.Signals(-child.returncode).name}); "
                         "check the GPU driver's OpenCL ICD, or use device = \"cpu\"")
    lines = child.stdout.decode(errors="replace").strip().splitlines()
    try:
        found = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = child.stderr.decode(errors="replace").strip().splitlines()
        raise UsageError("[train] device = \"gpu\": the GPU learner failed: "
                         f"{tail[-1] if tail else f'exit {child.returncode}'}") from None
    if "error" in found:
        raise UsageError(f"[train] device = \"gpu\": {found['error']}")
    return str(found["device"])
