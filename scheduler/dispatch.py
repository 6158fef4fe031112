"""RUN_COMPUTE / RUN_COMPUTE_INDIRECT: the staging registers read, and the dispatch as
asynchronous work on the stream's endpoint scoreboard entry (SET_SB_ENTRY).

The dispatch runs in bounded steps (JOB_STEP vector instructions of the shader core per
engine slice) until every workgroup has run; the scoreboard entry stays busy until then, so
a WAIT on it, or a SYNC_ADD deferred on it, waits for the work, as on hardware.
"""

from __future__ import annotations

from shader.compute import ComputeArgs, ComputeJob

from .isa import ComputeSR

JOB_STEP = 128


def compute_args(cs, ins) -> ComputeArgs:
    f = ins.fields
    return ComputeArgs(
        srt=cs.d(ComputeSR.SRT_0 + 2 * f["srt_select"]),
        fau=cs.d(ComputeSR.FAU_0 + 2 * f["fau_select"]),
        spd=cs.d(ComputeSR.SPD_0 + 2 * f["spd_select"]),
        tsd=cs.d(ComputeSR.TSD_0 + 2 * f["tsd_select"]),
        wg_size=cs.r(ComputeSR.WG_SIZE),
        job_offset=tuple(cs.r(ComputeSR.JOB_OFFSET_X + i) for i in range(3)),
        job_size=tuple(cs.r(ComputeSR.JOB_SIZE_X + i) for i in range(3)),
    )


class AsyncDispatch:
    """A dispatch queued on a scoreboard slot; `step` advances it, `done` once complete."""

    def __init__(self, aspace, args: ComputeArgs, what: str):
        self.job = ComputeJob(aspace, args)
        self.what = what

    def describe(self) -> list[str]:
        try:
            return [self.what] + self.job.describe()
        except Exception as e:  # the code may be unreadable: say so, the run itself faults on it
            return [self.what, f"(cannot read the shader: {e})"]

    @property
    def done(self) -> bool:
        return self.job.done

    def step(self, budget: int = JOB_STEP) -> bool:
        return self.job.step(budget)

    def finish(self) -> None:
        while not self.job.step(1 << 16):
            pass
