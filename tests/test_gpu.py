"""Training on LightGBM's OpenCL GPU learner, for real: on this machine's CPU through
PoCL (Debian's pocl-opencl-icd, which .ci/run installs), on a GPU where there is one.

Without an OpenCL runtime the GPU tests skip with the reason, unless MLYARD_REQUIRE_GPU
is set (CI sets it), where they fail instead; the no-runtime path is tested everywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlyard.core.errors import UsageError
from mlyard.core.training import trainer
from mlyard.core.training.cluster import train_on_cluster
from mlyard.core.workspace import open_workspace
from tests.conftest import mlyard, train_json

ICDS = Path(os.environ.get("OCL_ICD_VENDORS", "/etc/OpenCL/vendors"))


@pytest.fixture
def opencl() -> None:
    if not (ICDS.is_dir() and any(ICDS.glob("*.icd"))):
        reason = f"no OpenCL runtime ({ICDS} lists none; Debian: pocl-opencl-icd)"
        if os.environ.get("MLYARD_REQUIRE_GPU"):
            pytest.fail(f"MLYARD_REQUIRE_GPU is set but there is {reason}")
        pytest.skip(reason)


def test_training_on_the_gpu_learner_records_the_device_and_reproduces_within_tolerance(
        churn: Path, opencl: None) -> None:
    cpu = train_json()
    gpu = train_json("--device", "gpu")
    assert cpu["device"] == "cpu"
    assert gpu["device"].startswith("gpu: ") and len(gpu["device"]) > len("gpu: ")
    # the same data and seed: the single-precision learner lands close to the CPU's model
    assert abs(gpu["metrics"]["auc"] - cpu["metrics"]["auc"]) < 0.02
    shown = mlyard("runs", "show", gpu["run_id"])
    assert f"device {gpu['device']}" in shown.stdout
    detail = json.loads(mlyard("runs", "show", gpu["run_id"], "--json").stdout)
    assert detail["params"]["device_type"] == "gpu"
    assert detail["tags"]["mlyard.device"] == gpu["device"]

    reproduced = mlyard("reproduce", gpu["run_id"])
    assert reproduced.exit_code == 0, reproduced.stdout
    assert "trained on a GPU, so not expected byte-identical; metrics within 0.1%: yes" \
        in reproduced.stdout
    as_json = json.loads(mlyard("reproduce", gpu["run_id"], "--json").stdout)
    assert as_json["reproduced"] and as_json["tolerance"] == 0.001

    config = churn / "mlyard.toml"
    config.write_text(config.read_text().replace("[train]\n", "[train]\ndevice = \"gpu\"\n"))
    assert train_json()["device"] == gpu["device"]


def test_a_device_that_does_not_exist_is_one_line_listing_those_that_do(
        churn: Path, opencl: None) -> None:
    result = mlyard("train", "--device", "gpu", "--param", "gpu_device_id=9")
    assert result.exit_code == 2
    assert "gpu_device_id 9 does not exist on platform 0; this machine has platform 0 (" \
        in result.stderr
    assert json.loads(mlyard("runs", "list", "--json").stdout) == []


def test_without_an_opencl_runtime_gpu_training_says_what_to_install_and_starts_no_run(
        churn: Path, tmp_path: Path) -> None:
    empty = tmp_path / "no-icds"
    empty.mkdir()
    result = subprocess.run([sys.executable, "-m", "mlyard", "train", "--device", "gpu"],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OCL_ICD_VENDORS": str(empty)})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('mlyard: [train] device = "gpu": no OpenCL')
    assert "pocl-opencl-icd" in lines[0]
    assert json.loads(mlyard("runs", "list", "--json").stdout) == []


@pytest.mark.parametrize("line, says", [
    ('device = "tpu"', "key train.device: Invalid enum value 'tpu'; expected one of cpu, gpu"),
    ("gpu_device_id = -1", "key train.gpu_device_id: expected 0 or more, got -1"),
])
def test_a_bad_device_setting_names_its_key(churn: Path, line: str, says: str) -> None:
    config = churn / "mlyard.toml"
    config.write_text(config.read_text().replace("[train]\n", f"[train]\n{line}\n"))
    result = mlyard("train")
    assert result.exit_code != 0 and says in result.stderr


def test_a_cluster_refuses_the_gpu_before_it_is_used(churn: Path) -> None:
    ws = open_workspace(churn)
    training = trainer.plan(ws, device="gpu")
    assert training.params["device_type"] == "gpu"
    with pytest.raises(UsageError, match="on a Dask cluster mlyard trains on the workers' CPUs"):
        train_on_cluster(ws, training, client=None)
