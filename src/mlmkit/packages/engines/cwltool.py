"""cwltool, the CWL reference runner: every step on this machine, in containers unless told otherwise."""

from __future__ import annotations

from mlmkit.packages.engines.local import CommandJob, CwlRunner, executable
from mlmkit.errors import InvalidInput


class Cwltool(CwlRunner):
    name = "cwltool"

    def command(self, job: CommandJob) -> list[str]:
        if job.batch_system not in (None, "single_machine"):
            raise InvalidInput(f"cwltool runs every step on this machine; batch system {job.batch_system!r} "
                               "needs --engine toil")
        tmp = f"{job.scratch / 'tmp'}/"
        return [executable("cwltool", "cwltool"), "--outdir", str(job.outdir),
                "--tmpdir-prefix", tmp, "--tmp-outdir-prefix", tmp,
                *(["--no-container"] if not job.container else []),
                *job.extra_args, job.process, str(job.job_order)]
