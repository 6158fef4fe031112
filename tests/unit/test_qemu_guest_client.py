"""panthor-client on the host: its CS instruction encoders against scheduler/isa.py.

The client (qemu/guest_tools/panthor_client.c) writes its command buffers as 64-bit words
from small C encoders. Built natively here (the same -Werror flags as the arm64 build), its
`cs-encode` command prints what those encoders produce for a set of operands; each line
must equal `scheduler.isa.encode` of the same instruction, and decode back to it.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from qemu import tools
from scheduler.isa import Op, decode, encode

HOST_CC = shutil.which("cc") or shutil.which("gcc")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    if HOST_CC is None:
        pytest.skip("no host C compiler")
    out = tmp_path_factory.mktemp("client") / "panthor-client"
    flags = [f for f in tools.CFLAGS if f not in ("-static", "-s")]
    r = subprocess.run([HOST_CC, *flags, "-o", str(out), str(tools.CLIENT_SOURCE)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return out


def test_encoders_match_the_shared_isa(client):
    r = subprocess.run([str(client), "cs-encode"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    seen = set()
    for line in lines:
        name, *fields, word = line.split()
        kw = {k: int(v, 0) for k, v in (f.split("=") for f in fields)}
        op = Op[name]
        got = int(word, 16)
        assert got == encode(op, **kw), f"{line}: isa says {encode(op, **kw):#018x}"
        ins = decode(got)
        assert ins.op == op and all(getattr(ins, k) == v for k, v in kw.items()), line
        seen.add(op)
    # every instruction the job commands emit
    assert seen >= {Op.NOP, Op.MOVE48, Op.MOVE32, Op.WAIT, Op.ADD_IMM32, Op.LOAD_MULTIPLE,
                    Op.STORE_MULTIPLE, Op.BRANCH, Op.FLUSH_CACHE2, Op.SYNC_SET32,
                    Op.SYNC_ADD32, Op.SYNC_WAIT32, Op.SYNC_ADD64, Op.SYNC_SET64, Op.SYNC_WAIT64}


def test_usage_lists_the_job_commands(client):
    r = subprocess.run([str(client)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    for cmd in ("query", "vm-bind", "--with-job", "bad-ioctls", "job-store", "job-loop",
                "job-sync-chain", "groups", "job-fault", "job-hang", "jobs", "cs-encode"):
        assert cmd in r.stderr
    r = subprocess.run([str(client), "--dev", "/nonexistent/renderD128", "job-store"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "error=open" in r.stdout and "errname=ENOENT" in r.stdout
