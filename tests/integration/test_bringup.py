"""The bring-up loop (issue 12): host folders and files in the guest, RAM to fit, gdb, cached
package resolution, and the CLI from a wheel in a fresh virtual environment.

- `--share`: the host writes a file, the guest reads it and writes one back (virtio-9p);
  `--add` of a file (mode kept) and of a tree (an executable script in it runs) in the same
  boot;
- `--add` of a 400 MiB file: more than 1 GiB of guest RAM is needed to unpack it beside its
  archive, and the boot gets it by default (MemTotal in the guest, the file's size);
- `--gdb PORT --gdb-wait`: QEMU's gdbstub answers the remote protocol on 127.0.0.1 before
  the kernel runs, and the boot goes on once it is told to continue;
- two boots with the same `--guest-packages`: the second's resolution comes from the cache;
- `pip install` of a wheel built from the tree into a new venv, then its `mali-vdev setup`.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from qemu import boot, gdb, kernel_build

pytestmark = pytest.mark.guest

TIMEOUT_S = 180.0
REPO = Path(__file__).resolve().parents[2]


def values(output: str) -> dict[str, str]:
    return dict(re.findall(r"^([\w.]+)=(.*)$", output, re.M))


def test_share_round_trip_and_added_file_and_tree(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "from-host.txt").write_text("written by the host\n")
    tool = tmp_path / "tool.sh"
    tool.write_text("#!/bin/sh\necho tool-ran\n")
    tool.chmod(0o750)
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub/run.sh").write_text("#!/bin/sh\necho tree-script-ran\n")
    (tree / "sub/run.sh").chmod(0o755)
    (tree / "data.txt").write_text("tree data\n")
    os.symlink("data.txt", tree / "link.txt")
    cmd = """
echo "host_file=$(cat /mnt/host/from-host.txt)"
echo "written by the guest" > /mnt/host/from-guest.txt; sync
echo "tool_mode=$(stat -c %a /usr/local/bin/tool.sh)"
echo "tool_out=$(/usr/local/bin/tool.sh)"
echo "tree_out=$(/opt/tree/sub/run.sh)"
echo "tree_link=$(readlink /opt/tree/link.txt) $(cat /opt/tree/link.txt)"
"""
    r = boot.boot(cmd, TIMEOUT_S, driver="panthor", share=[f"{shared}:/mnt/host"],
                  add=[f"{tool}:/usr/local/bin/tool.sh", f"{tree}:/opt/tree"])
    assert r.status == 0, r.output[-3000:]
    v = values(r.output)
    assert v["host_file"] == "written by the host"
    assert (shared / "from-guest.txt").read_text() == "written by the guest\n"
    assert v["tool_mode"] == "750" and v["tool_out"] == "tool-ran"
    assert v["tree_out"] == "tree-script-ran"
    assert v["tree_link"] == "data.txt tree data"
    assert "mounting the host folder" not in r.output + r.console_log


def test_added_files_over_one_gib_of_ram_get_the_ram_they_need(tmp_path):
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(400 << 20)
    r = boot.boot('echo "size=$(stat -c %s /opt/big.bin)"\n'
                  "echo \"mem_kb=$(sed -n 's/^MemTotal: *\\([0-9]*\\) kB/\\1/p' /proc/meminfo)\"",
                  TIMEOUT_S, driver="none", add=[f"{big}:/opt/big.bin"])
    assert r.status == 0, r.output[-3000:]
    v = values(r.output)
    assert int(v["size"]) == 400 << 20
    assert int(v["mem_kb"]) > 1 << 20, v          # more than 1 GiB, by default
    assert "Initramfs unpacking failed" not in r.console_log
    # too little RAM asked for: refused before the boot, naming what to pass
    with pytest.raises(ValueError, match=r"--memory 1024 is too small: pass --memory \d+"):
        boot.boot("true", 30, driver="none", add=[f"{big}:/opt/big.bin"], memory_mb=1024)


def gdb_packet(sock: socket.socket, payload: str, timeout: float = 30.0) -> str:
    """One remote-protocol exchange: $payload#checksum, the stub's ack and reply."""
    csum = sum(payload.encode()) & 0xFF
    sock.sendall(f"${payload}#{csum:02x}".encode())
    sock.settimeout(timeout)
    buf = b""
    while not re.search(rb"\$[^#]*#[0-9a-f]{2}", buf):
        chunk = sock.recv(4096)
        if not chunk:
            break
        buf += chunk
    m = re.search(rb"\$([^#]*)#[0-9a-f]{2}", buf)
    assert m, buf
    sock.sendall(b"+")
    return m.group(1).decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gdb_stub_answers_before_the_kernel_runs():
    """On a kernel of `mali-vdev kernel build` (its vmlinux is the symbol file; Debian's
    kernel would need its -dbg package, hundreds of MiB)."""
    k = kernel_build.build("7.2")
    port = free_port()
    result: dict = {}
    t = threading.Thread(target=lambda: result.setdefault("r", boot.boot(
        "echo booted=1", TIMEOUT_S, driver="none", gdb_port=port, gdb_wait=True,
        kernel=k.image, modules=k.modules)), daemon=True)
    t.start()
    deadline = time.monotonic() + 120
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=2)
            break
        except OSError:
            assert time.monotonic() < deadline, "the gdbstub never listened"
            time.sleep(0.3)
    with sock:
        supported = gdb_packet(sock, "qSupported:multiprocess+")
        assert "PacketSize=" in supported, supported
        stop = gdb_packet(sock, "?")
        assert stop.startswith(("T", "S")), stop     # stopped: -S, the kernel has not run
        time.sleep(1.0)
        sock.sendall(b"$c#63")                        # continue; no reply until it stops
        t.join(TIMEOUT_S)
    assert not t.is_alive(), "the boot did not go on after gdb's continue"
    r = result["r"]
    assert r.status == 0 and "booted=1" in r.output, r.output[-2000:]
    assert "nokaslr" in r.console_log
    assert gdb.built_vmlinux(k.image) == k.dir / "out" / "vmlinux"


def test_second_boot_with_the_same_packages_resolves_from_the_cache(capfd):
    for _ in range(2):
        r = boot.boot("test -x /usr/bin/hello && echo hello_ok=1", TIMEOUT_S, driver="none",
                      guest_packages="hello")
        assert r.status == 0 and "hello_ok=1" in r.output, r.output[-2000:]
    err = capfd.readouterr().err
    lines = re.findall(r"guest packages hello: .* resolved (by apt|from the cache) in "
                       r"([\d.]+) s", err)
    assert lines[-1][0] == "from the cache" and float(lines[-1][1]) < 1.0, lines


def test_wheel_in_a_fresh_venv_runs_setup(tmp_path):
    dist, venv = tmp_path / "dist", tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist),
                    str(REPO)], check=True, timeout=600)
    wheel = next(dist.glob("mali_vdev-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin/python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, str(wheel)], check=True, timeout=900)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    r = subprocess.run([str(venv / "bin/mali-vdev"), "setup"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert re.search(r"^layer: .*tools-\w+\.cpio$", r.stdout, re.M), r.stdout  # the client built
    # everything came from the wheel, not from this checkout
    site = subprocess.run([str(venv / "bin/python"), "-c",
                           "import qemu.tools, qemu.kernel_build as k; print(qemu.tools.SOURCE_DIR); "
                           "print(k.FRAGMENT.is_file())"], capture_output=True, text=True,
                          cwd=tmp_path, env=env)
    src, fragment = site.stdout.split()
    assert str(venv) in src and (Path(src) / "panthor_client.c").is_file()
    assert fragment == "True"
    assert stat.S_ISREG(os.stat(Path(src) / "panthor_client.c").st_mode)
