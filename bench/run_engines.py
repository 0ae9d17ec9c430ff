"""Wall time of `mlmkit run --engine toil` on Slurm against Toil's single-machine batch system.

Both run the shipped inference package in containers over the same staged Sentinel-2 windows (the fixtures
of tests/cwl_fixtures.py), alternately, round after round, so that load from other processes hits both
alike. For Slurm runs, the jobs Slurm recorded (`sacct --completion`, filtered by the run's work directory)
are counted. Needs scripts/services/docker.sh and scripts/services/slurm.sh.

    . .venv/bin/activate && python bench/run_engines.py [--scenes 4] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from cwl_fixtures import BIN, staged_scenes, vegetation_model  # noqa: E402

BATCH_SYSTEMS = ("single_machine", "slurm")


def slurm_jobs(workdir_prefix: Path) -> list[str]:
    out = subprocess.run(["sacct", "--completion", "--parsable2", "--noheader", "--format", "JobName,State,WorkDir"],
                         capture_output=True, text=True, check=True).stdout
    return [line.split("|")[0] for line in out.splitlines() if line.split("|")[2].startswith(str(workdir_prefix))]


def run_once(model: Path, scenes: list[Path], batch_system: str, outdir: Path) -> float:
    command = [str(BIN / "mlmkit"), "run", "--model", str(model), *[a for s in scenes for a in ("--input", str(s))],
               "--engine", "toil", "--batch-system", batch_system, "--outdir", str(outdir)]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=4, help="staged windows, one scattered job each (at most 4)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("MLMKIT_SCHEMA_DIR", str(REPO.parent / "shared" / "stac-schemas"))
    with tempfile.TemporaryDirectory(prefix="mlmkit-bench-run-") as tmp:
        root = Path(tmp)
        model = vegetation_model(root / "model", "--inference-cwl", str(REPO / "cwl" / "inference.cwl"))
        scenes = staged_scenes(root / "scenes", args.scenes)
        times: dict[str, list[float]] = {name: [] for name in BATCH_SYSTEMS}
        for round_ in range(args.rounds):
            for name in BATCH_SYSTEMS:
                outdir = root / f"{name}-{round_}"
                seconds = run_once(model, scenes, name, outdir)
                times[name].append(seconds)
                jobs = f", Slurm jobs: {len(slurm_jobs(outdir))}" if name == "slurm" else ""
                print(f"round {round_ + 1} {name:>14}: {seconds:6.1f} s{jobs}", flush=True)
    single, slurm = (statistics.median(times[name]) for name in BATCH_SYSTEMS)
    print(f"median single_machine {single:.1f} s, slurm {slurm:.1f} s; slurm / single_machine = {slurm / single:.2f}")


if __name__ == "__main__":
    main()
