"""Toil: scatters a workflow's steps as jobs of a batch system (this machine, Slurm, Kubernetes, AWS Batch, ...).

The job store and work directory lie in the run's scratch directory: on a cluster it must sit on a file system
every node shares (Toil's file job store), which is why `mlmkit run` keeps it beside the output directory.
"""

from __future__ import annotations

from mlmkit.packages.engines.local import CommandJob, CwlRunner, executable


class Toil(CwlRunner):
    name = "toil"

    def command(self, job: CommandJob) -> list[str]:
        # --no-prepull: images are pulled (or found in the local engine) by each job, as cwltool does.
        return [executable("toil-cwl-runner", "toil[cwl]"),
                "--batchSystem", job.batch_system or "single_machine",
                "--jobStore", str(job.scratch / "jobstore"), "--workDir", str(job.scratch),
                "--outdir", str(job.outdir), "--logColors", "false", "--no-prepull",
                *(["--no-container"] if not job.container else []),
                *job.extra_args, job.process, str(job.job_order)]
