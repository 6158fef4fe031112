"""The fragment front end of the virtual GPU: RUN_FRAGMENT for passes with no draws.

A render pass that only clears (GL's glClear, a Vulkan pass with loadOp CLEAR and no draws)
reaches the GPU as one RUN_FRAGMENT: a framebuffer descriptor (FBD) naming render targets
and a depth/stencil target, with clear values, and a bounding box.  Each tile's buffer starts
as the clear values and is written back in the layout each target names.

| module | what |
|---|---|
| `fault.py` | `FragmentFault`: what the queue gets when a descriptor cannot be honoured |
| `fbd.py` | read and check the FBD, its ZS/CRC extension and render targets (mali_regs.descriptors) |
| `pixels.py` | the value a cleared target holds per pixel, in its writeback format |
| `layouts.py` | writing a rectangle of one value: linear, 16x16 u-interleaved |
| `afbc.py` | writing solid-colour AFBC superblocks |
| `job.py` | RUN_FRAGMENT itself: bbox, targets, writeback |

Imports mali_regs (names, layouts) and mali_base (the address space every access goes
through) only; the scheduler calls `job.run_fragment`.
"""

from .fault import FragmentFault
from .job import FragmentJob, run_fragment

__all__ = ["FragmentFault", "FragmentJob", "run_fragment"]
