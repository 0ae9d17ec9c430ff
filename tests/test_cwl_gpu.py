"""The GPU variant of the inference package: valid CWL, clean for the EOAP validator, and the CPU package
with exactly the GPU differences (image, CUDA hint, --device cuda, ids), so the two cannot drift apart.
Its image target (Dockerfile `inference-gpu`) is large and is not built here."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import yaml

from mlmkit import __version__

CWL = Path(__file__).resolve().parents[1] / "cwl"
BIN = Path(sys.executable).parent


def _load(name: str) -> dict:
    return yaml.safe_load((CWL / name).read_text())


def _by_id(document: dict) -> dict[str, dict]:
    return {process["id"]: process for process in document["$graph"]}


def test_gpu_package_is_valid_cwl_and_clean_for_eoap() -> None:
    check = subprocess.run([BIN / "cwltool", "--validate", CWL / "inference-gpu.cwl"], capture_output=True, text=True)
    assert check.returncode == 0 and "inference-gpu.cwl is valid CWL" in check.stdout + check.stderr
    result = subprocess.run([BIN / "eoap-validator", "--profile", "eoap-package", "--profile", "metadata", "--format",
                             "json", CWL / "inference-gpu.cwl"], capture_output=True, text=True)
    report = json.loads(result.stdout)
    findings = [(f["rule_id"], f["status"]) for f in report["findings"] if f["status"] not in ("passed", "not-applicable")]
    tools = [p for p in _load("inference-gpu.cwl")["$graph"] if p["class"] == "CommandLineTool"]
    # as for the CPU package: only the DockerRequirement being a hint (so it runs with --no-container too)
    assert findings == [("EOAP.CONTAINER.HINT", "needs-review")] * len(tools)
    assert result.returncode == 0 and report["entrypoint"] == "mlmkit-inference-gpu"
    assert report["counts"]["failed"] == report["counts"]["blocked"] == 0


def test_gpu_package_is_the_cpu_package_with_the_gpu_differences() -> None:
    cpu, gpu = _load("inference.cwl"), _load("inference-gpu.cwl")
    expected = copy.deepcopy(cpu)
    expected["$namespaces"]["cwltool"] = "http://commonwl.org/cwltool#"
    for key in ("s:name", "s:description", "s:keywords"):
        expected[key] = gpu[key]
    processes = _by_id(expected)
    workflow, predict = processes["mlmkit-inference"], processes["mlmkit-predict"]
    workflow.update(id="mlmkit-inference-gpu", label=gpu["$graph"][0]["label"])
    workflow["steps"]["predict"]["run"] = "#mlmkit-predict-gpu"
    predict.update(id="mlmkit-predict-gpu", label="mlmkit predict on a GPU", doc=_by_id(gpu)["mlmkit-predict-gpu"]["doc"])
    predict["hints"][0]["dockerPull"] = f"mlmkit:{__version__}-gpu"
    predict["hints"].append({"class": "cwltool:CUDARequirement", "cudaVersionMin": "12.0",
                             "cudaComputeCapability": "5.2", "cudaDeviceCountMin": 1, "cudaDeviceCountMax": 1})
    predict["arguments"].insert(1, {"prefix": "--device", "valueFrom": "cuda"})
    providers = workflow["inputs"]["providers"]  # on a GPU, CUDA first (a platform needs a default: ZOO's runner)
    providers.update(default=["CUDAExecutionProvider", "CPUExecutionProvider"],
                     doc=_by_id(gpu)["mlmkit-inference-gpu"]["inputs"]["providers"]["doc"])
    assert gpu == expected
    assert "GPU" in gpu["s:keywords"] and "GPU" in gpu["s:description"]


def test_dockerfile_has_the_gpu_target_with_onnxruntime_gpu() -> None:
    dockerfile = (CWL.parent / "Dockerfile").read_text()
    stages = [line.split()[-1] for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert stages[-1] == "inference-gpu" and "onnxruntime-gpu[cuda,cudnn]" in dockerfile
    assert stages.index("inference-gpu") > stages.index("training")  # the classic builder never builds it for others
