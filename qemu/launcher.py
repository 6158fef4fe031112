"""Starting and always stopping the two processes of a boot: our vfio-user server and QEMU.

Each child runs in its own session (so a terminal's Ctrl-C reaches only us, and we can
kill its whole process group) and gets SIGKILL from the kernel if we die without
cleaning up.  `Session` is a context manager: whatever happens inside (timeout,
exception, KeyboardInterrupt, SIGTERM turned into an exception by boot.py), leaving it
kills both groups, waits for them and removes the socket and the scratch directory.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from qemu.qemu_binary import QemuBinary

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVER_READY_TIMEOUT_S = 30.0
PR_SET_PDEATHSIG = 1
GUEST_SLOT = "01.0"
SCRATCH_PREFIX = "mali-vdev-run."
SERVER_PROGRAM = [sys.executable, "-m", "mali_vdev"]

# The guest's generic-timer frequency (CNTFRQ_EL0) under QEMU, per `-cpu`: 62.5 MHz
# (GTIMER_SCALE 16 ns) for CPUs before FEAT_ECV such as cortex-a72; QEMU 9+ gives `max`
# and Armv8.6+ models 1 GHz.  The GPU's TIMESTAMP must tick at the same rate (panthor
# reports CNTFRQ as the GPU timestamp frequency), so the launcher passes this to
# `mali-vdev serve --timestamp-hz`; the integration tests check it against the
# frequency the guest's panthor reports.
GUEST_COUNTER_HZ = {"cortex-a72": 62_500_000, "max": 1_000_000_000}


def guest_counter_hz(cpu: str) -> int:
    try:
        return GUEST_COUNTER_HZ[cpu]
    except KeyError:
        raise ValueError(f"unknown guest counter frequency for -cpu {cpu}; "
                         f"add it to GUEST_COUNTER_HZ") from None


def _die_with_parent() -> None:
    """preexec hook: have the kernel kill this child if the launcher dies (Linux)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


class Child:
    """A subprocess in its own process group, output to a log file."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict | None = None,
                 stdout=None, cwd: Path | None = None):
        self.name, self.argv, self.log_path = name, argv, log
        self._log = open(log, "wb")
        self.stopped = False
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=stdout or self._log,
            stderr=self._log, env={**os.environ, **(env or {})}, cwd=cwd,
            start_new_session=True, preexec_fn=_die_with_parent)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace_s: float = 3.0) -> int | None:
        """SIGTERM the group, SIGKILL it if it lingers; reaps.  Idempotent."""
        if self.stopped:
            return self.proc.returncode
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait()
        self.stopped = True
        self._log.close()
        return self.proc.returncode

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def remove_dead_scratch(parent: Path) -> None:
    """Scratch dirs of launchers that were SIGKILLed (their children died with them)."""
    for d in parent.glob(SCRATCH_PREFIX + "*"):
        try:
            pid = int((d / "owner.pid").read_text())
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except (OSError, ValueError):
            pass  # not ours, or still being set up


def machine_args(cpu: str = "cortex-a72", smp: int = 1, mem_mb: int = 1024) -> list[str]:
    """Everything that shapes the machine (and so its DTB); shared by dumpdtb and boot."""
    return [
        "-machine", "virt,memory-backend=mem", "-cpu", cpu, "-smp", str(smp),
        "-m", f"{mem_mb}M",
        # vfio-user needs guest RAM in a shareable fd the server can mmap.
        "-object", f"memory-backend-memfd,id=mem,size={mem_mb}M,share=on",
        # No default devices: the virt machine's default NIC would take PCI slot 1.
        "-nodefaults", "-nic", "none", "-display", "none",
    ]


def serial_args(console: str, output: str) -> list[str]:
    """ttyAMA0 (the kernel console) and ttyAMA1 (/init's output, see qemu/console.py).
    The virt machine only puts the second UART in its DTB when it has a backend, so the
    DTB dump needs both as well."""
    return ["-serial", console, "-serial", output]


def vfio_user_device(qemu: QemuBinary, socket: Path) -> str:
    # JSON syntax: `socket` is a struct (SocketAddress), not a plain string.
    return json.dumps({"driver": "vfio-user-pci",
                       "socket": {"type": "unix", "path": qemu.path(socket)},
                       "addr": GUEST_SLOT})


class Session:
    """One boot's scratch directory, server and QEMU; cleaned up on exit, always."""

    def __init__(self, qemu: QemuBinary, log_dir: Path | None = None, keep_logs: bool = False):
        self.qemu = qemu
        # The socket and per-boot files must be visible to QEMU (inside its chroot if any).
        parent = Path(qemu.scratch_parent() or tempfile.gettempdir())
        remove_dead_scratch(parent)
        self.scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=parent))
        (self.scratch / "owner.pid").write_text(f"{os.getpid()}\n")
        self.socket = self.scratch / "gpu.sock"
        # QMP (only with qmp_args()): the server's socket (break -> stop, continue -> cont)
        # and the launcher's own (QEMU serves one client per QMP socket at a time).
        self.qmp_socket = self.scratch / "qmp.sock"
        self.monitor_socket = self.scratch / "monitor.sock"
        self.keep_logs = keep_logs or log_dir is not None
        self.log_dir = Path(log_dir) if log_dir else self.scratch / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.server: Child | None = None
        self.vm: Child | None = None
        self.server_grace_s = 3.0   # SIGTERM -> SIGKILL (a traced server writes its tail)

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def stop(self) -> None:
        """Stop QEMU, then the server (so it sees a clean disconnect); remove the socket."""
        if self.vm is not None:
            self.vm.stop()
        if self.server is not None:
            self.server.stop(self.server_grace_s)
        self.socket.unlink(missing_ok=True)

    def close(self) -> None:
        """stop(), then remove the scratch directory (moving the logs out if kept)."""
        self.stop()
        if self.keep_logs and self.log_dir.is_relative_to(self.scratch):
            kept = Path(tempfile.mkdtemp(prefix="mali-vdev-logs."))
            for f in self.log_dir.iterdir():
                shutil.move(str(f), kept / f.name)
            self.log_dir = kept
        shutil.rmtree(self.scratch, ignore_errors=True)

    def start_server(self, extra_args: list[str] = (), program: list[str] | None = None,
                     timeout_s: float = SERVER_READY_TIMEOUT_S) -> None:
        """Run `python -m mali_vdev serve --socket S`; ready once S exists (it binds to a
        temporary name and renames, so existence means listening)."""
        argv = [*(program or SERVER_PROGRAM), "serve", "--socket", str(self.socket),
                *extra_args]
        self.server = Child("server", argv, self.log_dir / "server.log", cwd=REPO_ROOT,
                            env={"PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + timeout_s
        while True:
            if self.socket.exists() and stat.S_ISSOCK(self.socket.stat().st_mode):
                return
            if not self.server.alive():
                raise RuntimeError(
                    f"server exited early with status {self.server.proc.returncode}: "
                    f"{' '.join(argv)}\n--- {self.server.log_path} (tail) ---\n"
                    f"{tail(self.server.log_path)}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"server did not create {self.socket} within {timeout_s:.0f} s\n"
                    f"--- {self.server.log_path} (tail) ---\n{tail(self.server.log_path)}")
            time.sleep(0.02)

    def qmp_args(self) -> list[str]:
        """QEMU options for the two QMP sockets (paths as QEMU sees them)."""
        return [arg for sock in (self.qmp_socket, self.monitor_socket)
                for arg in ("-qmp", f"unix:{self.qemu.path(sock)},server=on,wait=off")]

    def start_qemu(self, args: list[str]) -> Child:
        """Start QEMU; its serial console is its stdout (a pipe), its stderr a log file."""
        self.vm = Child("qemu", self.qemu.argv(*args), self.log_dir / "qemu.log",
                        env=self.qemu.env, stdout=subprocess.PIPE)
        return self.vm
