"""The installed `mali-vdev` command works from any directory: every package it imports is
part of the installed project (found: `shader`, added later, was missing from pyproject's
package list, so `trace show` run outside the source tree failed with "No module named")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

COMMAND = Path(sys.executable).with_name("mali-vdev")
# A trace holding one RUN_COMPUTE job: decoding it imports the scheduler, shader core and
# fragment packages, the deepest import chain of the command.
TRACE = ('{"type":"header","format":"mali-vdev-trace","gpu_id":2825322501,"profile":"g610"}\n'
         '{"seq":1,"t_ns":5,"kind":"JOB","addr":4096,"value":%d,"slot":0,"stream":0}\n' % (0x04 << 56))


@pytest.mark.skipif(not COMMAND.exists(), reason=f"no installed command at {COMMAND} (pip install -e . first)")
def test_trace_show_of_a_job_outside_the_source_tree(tmp_path):
    (tmp_path / "t.jsonl").write_text(TRACE)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([str(COMMAND), "trace", "show", "--jobs", "t.jsonl"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "RUN_COMPUTE" in r.stdout, r.stdout
