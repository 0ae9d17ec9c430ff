"""Toil on a real Slurm cluster: `mlmkit run --engine toil --batch-system slurm` scatters the inference package
over four staged scenes as separate Slurm jobs, each running its step in the project image.

The cluster is the one-node cluster of scripts/services/slurm.sh; Slurm's own record of finished jobs (the
jobcomp/filetxt plugin, read with `sacct --completion`) is the independent witness of what ran where.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import require_services
from cwl_fixtures import BIN, check_vegetation_results, staged_scenes, vegetation_model
from mlmkit import __version__

CWL = Path(__file__).resolve().parents[1] / "cwl"
SCENES = 4
pytestmark = [pytest.mark.slurm, pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def slurm_cluster() -> None:
    """A Slurm node that takes jobs, and completion records sacct can read."""
    problem = None
    if shutil.which("sinfo") is None:
        problem = "no Slurm (bash scripts/services/slurm.sh installs and starts a one-node cluster)"
    else:
        state = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True)
        config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True).stdout
        if state.returncode != 0 or not re.match(r"(idle|mixed|allocated|completing)", state.stdout.strip()):
            problem = f"the Slurm node is not up ({(state.stdout or state.stderr).strip()}; scripts/services/slurm.sh)"
        elif not re.search(r"JobCompType\s*=\s*jobcomp/filetxt", config):
            problem = "Slurm records no job completions (JobCompType=jobcomp/filetxt; scripts/services/slurm.sh)"
    if problem:
        if require_services():
            pytest.fail(problem)
        pytest.skip(problem)


def completed_jobs(workdir_prefix: Path) -> dict[str, tuple[str, str, str]]:
    """Slurm's completion records of the jobs submitted from under `workdir_prefix`: name -> (id, state, exit)."""
    out = subprocess.run(["sacct", "--completion", "--parsable2", "--noheader",
                          "--format", "JobID,JobName,State,ExitCode,NodeList,WorkDir"],
                         capture_output=True, text=True, check=True).stdout
    jobs = {}
    for line in out.splitlines():
        job_id, name, state, exit_code, _, workdir = line.split("|")
        if workdir.startswith(str(workdir_prefix)):
            jobs[name] = (job_id, state, exit_code)
    return jobs


def test_toil_scatters_inference_as_slurm_jobs(slurm_cluster, docker_images, tmp_path: Path, schema_dir: Path) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLMKIT_SCHEMA_DIR", str(schema_dir))
        model = vegetation_model(tmp_path / "model", "--inference-cwl", str(CWL / "inference.cwl"))
    scenes = staged_scenes(tmp_path / "scenes", SCENES)
    outdir, logs = tmp_path / "out", tmp_path / "worker-logs"
    run = subprocess.run([BIN / "mlmkit", "run", "--model", model, *[a for s in scenes for a in ("--input", s)],
                          "--engine", "toil", "--batch-system", "slurm", "--outdir", outdir,
                          "--log", tmp_path / "toil.log", f"--engine-arg=--writeLogs={logs}",
                          "--engine-arg=--writeLogsFromAllJobs=true"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    # What Toil says it issued: one predict job per scene and the merge, by Toil job number.
    issued = dict(re.findall(r"Issued job 'CWLJob' (mlmkit-inference\.\S+) .*with job batch system ID: (\d+)",
                             (tmp_path / "toil.log").read_text()))
    predicts = sorted(step for step in issued if step.endswith(".mlmkit-predict"))
    assert predicts == [f"mlmkit-inference.{n}.mlmkit-predict" for n in range(SCENES)]
    # What Slurm says ran: each of those jobs, under Toil's name for it, completed with exit 0 on the node.
    jobs = completed_jobs(outdir)
    expected = {f"toil_job_{number}_{step}" for step, number in issued.items()}
    assert expected <= set(jobs), (expected, jobs)
    assert len({jobs[name][0] for name in expected}) == len(expected) == SCENES + 1  # one Slurm job each
    assert all(jobs[name][1:] == ("COMPLETED", "0:0") for name in expected), jobs
    # Inside each job, cwltool ran the step in the project image.
    for step in predicts:
        worker_log = next(logs.glob(f"CWLJob_{step.replace('-', '--')}_*.log")).read_text()
        assert re.search(rf"\$ docker \\\s.*mlmkit:{re.escape(__version__)}\b", worker_log, re.S), step
    check_vegetation_results(outdir / "results", SCENES)  # the merged catalog: every class map right, validated
