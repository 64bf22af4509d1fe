"""The child process of `device.probe`: list OpenCL devices, then train a tiny model on
the chosen one. Prints one JSON line last: {"device": name} or {"error": sentence}.

    python -m mlyard.core.training.gpu_probe PLATFORM_ID DEVICE_ID    (-1: the default)

Run apart from mlyard's own process, because a broken OpenCL driver can abort it.
"""

from __future__ import annotations

import ctypes
import json
import sys

import lightgbm as lgb
import numpy as np

from mlyard.core.training.device import INSTALL_HINT

_PLATFORM_NAME = 0x0902
_DEVICE_NAME = 0x102B
_DEVICE_TYPE_ALL = 0xFFFFFFFF
_SIZE_P = ctypes.POINTER(ctypes.c_size_t)


def opencl_devices() -> list[tuple[str, list[str]]]:
    """(platform name, [device names]) for every platform the ICD loader finds."""
    try:
        cl = ctypes.CDLL("libOpenCL.so.1")
    except OSError:
        raise LookupError(f"no OpenCL loader (libOpenCL.so.1) on this machine; {INSTALL_HINT}"
                          ) from None
    cl.clGetPlatformIDs.argtypes = [ctypes.c_uint, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint)]
    cl.clGetPlatformInfo.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_size_t,
                                     ctypes.c_void_p, _SIZE_P]
    cl.clGetDeviceIDs.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint,
                                  ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint)]
    cl.clGetDeviceInfo.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_size_t,
                                   ctypes.c_void_p, _SIZE_P]
    count = ctypes.c_uint(0)
    if cl.clGetPlatformIDs(0, None, ctypes.byref(count)) != 0 or count.value == 0:
        raise LookupError(f"no OpenCL device found (the loader finds no platform); "
                          f"{INSTALL_HINT}")
    platforms = (ctypes.c_void_p * count.value)()
    cl.clGetPlatformIDs(count.value, platforms, None)
    found: list[tuple[str, list[str]]] = []
    for platform in platforms:
        name = _text(cl.clGetPlatformInfo, platform, _PLATFORM_NAME)
        devices = ctypes.c_uint(0)
        if cl.clGetDeviceIDs(platform, _DEVICE_TYPE_ALL, 0, None, ctypes.byref(devices)) != 0:
            found.append((name, []))
            continue
        ids = (ctypes.c_void_p * devices.value)()
        cl.clGetDeviceIDs(platform, _DEVICE_TYPE_ALL, devices.value, ids, None)
        found.append((name, [_text(cl.clGetDeviceInfo, d, _DEVICE_NAME) for d in ids]))
    return found


def _text(getter: ctypes._NamedFuncPointer, handle: int | None, what: int) -> str:
    size = ctypes.c_size_t(0)
    getter(handle, what, 0, None, ctypes.byref(size))
    buffer = ctypes.create_string_buffer(size.value)
    getter(handle, what, size.value, buffer, None)
    return buffer.value.decode(errors="replace").strip()


def choose(found: list[tuple[str, list[str]]], platform_id: int, device_id: int) -> str:
    """The device LightGBM will use, or LookupError naming what exists."""
    listing = "; ".join(f"platform {p} ({name}): " + (", ".join(
        f"device {d} ({device})" for d, device in enumerate(devices)) or "no devices")
        for p, (name, devices) in enumerate(found))
    platform = max(platform_id, 0)
    if platform >= len(found):
        raise LookupError(f"gpu_platform_id {platform_id} does not exist; this machine has "
                          f"{listing}")
    name, devices = found[platform]
    device = max(device_id, 0)
    if device >= len(devices):
        raise LookupError(f"gpu_device_id {device_id} does not exist on platform {platform}; "
                          f"this machine has {listing}")
    return f"{devices[device]} ({name})"


def try_learner(platform_id: int, device_id: int) -> None:
    rows = np.random.default_rng(0).random((500, 3))
    target = (rows[:, 0] > 0.5).astype(float)
    lgb.train({"objective": "binary", "device_type": "gpu", "gpu_platform_id": platform_id,
               "gpu_device_id": device_id, "verbosity": -1, "num_threads": 1,
               "min_data_in_leaf": 5}, lgb.Dataset(rows, target), num_boost_round=2)


def main() -> None:
    platform_id, device_id = int(sys.argv[1]), int(sys.argv[2])
    try:
        device = choose(opencl_devices(), platform_id, device_id)
        try_learner(platform_id, device_id)
    except LookupError as exc:
        print(json.dumps({"error": str(exc)}))
        return
    except Exception as exc:  # noqa: BLE001 - LightGBM's errors, said as one line
        message = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
        if "GPU Tree Learner was not enabled" in message:
            message = ("this LightGBM was built without the GPU learner; install the PyPI "
                       "wheel (pip install lightgbm, Linux) or build it with -DUSE_GPU=ON")
        print(json.dumps({"error": f"the GPU learner failed: {message}"}))
        return
    print(json.dumps({"device": device}))


if __name__ == "__main__":
    main()
