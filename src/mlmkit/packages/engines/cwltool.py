"""cwltool, the CWL reference runner: every step on this machine, in containers unless told otherwise."""

from __future__ import annotations

from mlmkit.packages.engines.local import CommandJob, CwlRunner, executable
from mlmkit.errors import InvalidArgument


class Cwltool(CwlRunner):
    name = "cwltool"

    def command(self, job: CommandJob) -> list[str]:
        if job.batch_system not in (None, "single_machine"):
            raise InvalidArgument(f"cwltool runs every step on this machine; batch system {job.batch_system!r} "
                                  "needs the toil engine")
        tmp = f"{job.scratch / 'tmp'}/"
        return [executable("cwltool", "cwltool"), "--outdir", str(job.outdir),
                "--tmpdir-prefix", tmp, "--tmp-outdir-prefix", tmp,
                *(["--no-container"] if not job.container else []),
                *job.extra_args, job.process, str(job.job_order)]
