"""Booting the arm64 guest against our vfio-user server: setup, one boot, CLI glue.

`setup()` fetches/builds every asset (QEMU, kernel, modules, busybox, firmware,
initramfs, DTB) into the cache; `boot()` runs one guest command and returns its output
and exit status.  `add_*_arguments`/`run_*` are what the project CLI calls.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from qemu import assets as guest_assets
from qemu import cache, devicetree, initramfs, qemu_binary
from qemu.console import OUT, ConsoleMonitor
from qemu.launcher import Session, machine_args, vfio_user_device

# Read GPU_ID (BAR0 offset 0) through the real PCI -> vfio-user path.
DEFAULT_GUEST_CMD = "devmem 0x10000000 32"
DEFAULT_TIMEOUT_S = 180.0
# cortex-a72 boots faster under TCG than "max" (no pointer-authentication emulation).
CPU, SMP, MEM_MB = "cortex-a72", 1, 1024
POWEROFF_GRACE_S = 10.0


class BootError(RuntimeError):
    """The guest command did not run to its end marker (timeout, panic, crash...)."""

    def __init__(self, message: str, result: "BootResult"):
        super().__init__(message)
        self.result = result


@dataclass
class Prepared:
    qemu: qemu_binary.QemuBinary
    assets: guest_assets.GuestAssets
    initramfs: Path
    dtb: Path
    machine: list[str]


@dataclass
class BootResult:
    status: int | None                  # the guest command's exit status
    output: str                         # its stdout+stderr, without kernel messages
    console_log: str                    # the whole serial console
    server_log: str
    kernel_version: str
    qemu_log: str = ""
    timings: dict[str, float] = field(default_factory=dict)  # seconds since QEMU start
    log_dir: Path | None = None         # where the logs are kept (None: removed)


def setup(build: bool = True) -> Prepared:
    """Everything a boot needs, from the cache or fetched/built now."""
    cache.step(f"cache: {cache.cache_root()}")
    qemu = qemu_binary.find_qemu(build=build)
    cache.step(f"using {qemu.describe()}")
    assets = guest_assets.fetch_assets()
    base = initramfs.build_base(assets)
    machine = machine_args(CPU, SMP, MEM_MB)
    dtb = devicetree.build_dtb(qemu, machine, cache.cache_root() / "dtb")
    return Prepared(qemu, assets, base, dtb, machine)


def kernel_cmdline(load_panthor: bool, extra: str = "") -> str:
    parts = ["console=ttyAMA0", "rdinit=/init", "panic=-1",
             f"mali.load_panthor={int(load_panthor)}"]
    return " ".join(parts + ([extra] if extra else []))


@contextmanager
def _sigterm_as_interrupt():
    """Let SIGTERM unwind like Ctrl-C so the session's cleanup runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def boot(guest_cmd: str = DEFAULT_GUEST_CMD, timeout: float = DEFAULT_TIMEOUT_S,
         gpu: str | None = None, load_panthor: bool = False, log_dir: Path | None = None,
         keep_logs: bool = False, server_args: list[str] = (), extra_append: str = "",
         echo=None, prepared: Prepared | None = None,
         server_program: list[str] | None = None, show_console=None) -> BootResult:
    """Boot the guest, run `guest_cmd` in it, return its output and exit status.

    Raises BootError (carrying the partial BootResult and log tails) if the command
    does not finish: timeout, kernel panic, QEMU or server failure.
    `echo(line)` is called live for each output line of the guest command.
    `show_console(line)` is called live for every console line (kernel messages too).
    `server_program` replaces `python -m mali_gpu` (e.g. a stand-in server in tests).
    """
    p = prepared or setup()
    extra = [*server_args, *(["--gpu", gpu] if gpu else [])]
    with _sigterm_as_interrupt(), Session(p.qemu, log_dir, keep_logs) as s:
        initrd = initramfs.write_boot_initrd(p.initramfs, guest_cmd, s.scratch / "initrd.cpio")
        cache.step("starting the vfio-user server")
        s.start_server(extra, server_program)
        args = [*p.machine, "-serial", "stdio", "-monitor", "none", "-no-reboot",
                "-kernel", p.qemu.stage(p.assets.kernel, s.scratch),
                "-initrd", p.qemu.path(initrd), "-dtb", p.qemu.stage(p.dtb, s.scratch),
                "-append", kernel_cmdline(load_panthor, extra_append),
                "-device", vfio_user_device(p.qemu, s.socket)]
        cache.step(f"booting Linux {p.assets.kernel_version} under {p.qemu.describe()}")
        t0 = time.monotonic()
        vm = s.start_qemu(args)
        console_path = s.log_dir / "console.log"
        with open(console_path, "w") as log:
            mon = ConsoleMonitor(vm.proc.stdout, log, t0, on_output=echo,
                                 on_line=show_console).start()
            failure = _wait(mon, vm, s, t0, timeout)
            if failure is None:  # /init powers off; give QEMU a moment to exit by itself
                try:
                    vm.proc.wait(POWEROFF_GRACE_S)
                except subprocess.TimeoutExpired:
                    pass
            s.stop()
            mon.join(5)
        timings = dict(mon.times, total=round(time.monotonic() - t0, 3))
        result = BootResult(
            status=mon.exit_status, output="".join(l + "\n" for l in mon.output),
            console_log=_read(console_path), server_log=_read(s.log_dir / "server.log"),
            qemu_log=_read(s.log_dir / "qemu.log"), kernel_version=p.assets.kernel_version,
            timings=timings)
    result.log_dir = s.log_dir if s.keep_logs else None  # where close() moved them
    if failure is not None:
        raise BootError(_explain(failure, result), result)
    return result


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _wait(mon: ConsoleMonitor, vm, s: Session, t0: float, timeout: float) -> str | None:
    """Block until the exit marker (None) or a failure (its description)."""
    while True:
        mon.changed.wait(0.2)
        mon.changed.clear()
        if mon.exit_status is not None:
            return None if mon.error is None else f"guest /init failed: {mon.error}"
        if mon.panic:
            time.sleep(1.0)  # let the rest of the panic report reach the log
            return f"guest kernel panic: {mon.panic}"
        if mon.eof or not vm.alive():
            mon.join(2)
            if mon.exit_status is not None:
                continue
            return f"QEMU exited (status {vm.proc.poll()}) before the guest command finished"
        if s.server and not s.server.alive():
            return f"the server exited (status {s.server.proc.returncode}) during the boot"
        if time.monotonic() - t0 > timeout:
            return f"timeout: no end marker after {timeout:.0f} s"


def _explain(failure: str, r: BootResult) -> str:
    where = f"\nlogs kept in {r.log_dir}" if r.log_dir else ""
    last = lambda text, n=25: "\n".join(text.splitlines()[-n:]) or "(empty)"  # noqa: E731
    return (f"{failure} (kernel {r.kernel_version}, timings {r.timings}){where}\n"
            f"--- console (tail) ---\n{last(r.console_log)}\n"
            f"--- QEMU stderr (tail) ---\n{last(r.qemu_log, 10)}\n"
            f"--- server log (tail) ---\n{last(r.server_log, 15)}")


# --- CLI ----------------------------------------------------------------------------

def add_boot_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--guest-cmd", default=DEFAULT_GUEST_CMD, metavar="CMD",
                        help=f"shell command to run in the guest (default: {DEFAULT_GUEST_CMD!r})")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                        help="give up after S seconds (default: %(default)s)")
    parser.add_argument("--gpu", metavar="NAME", help="GPU model, passed to the server")
    parser.add_argument("--load-panthor", action="store_true",
                        help="insmod drm, gpu-sched, drm_exec, drm_gpuvm and panthor first")
    parser.add_argument("--log-dir", type=Path, metavar="DIR",
                        help="write console/server/QEMU logs to DIR (kept)")
    parser.add_argument("--keep-logs", action="store_true",
                        help="keep the logs of the boot (their directory is printed)")
    parser.add_argument("--show-console", action="store_true",
                        help="echo the whole serial console (kernel messages) to stderr")


def _print_console(line: str) -> None:
    if OUT not in line:  # the command's own lines go to stdout via `echo`
        print(f"console| {line}", file=sys.stderr, flush=True)


def run_boot(args: argparse.Namespace) -> int:
    try:
        r = boot(args.guest_cmd, args.timeout, gpu=args.gpu, load_panthor=args.load_panthor,
                 log_dir=args.log_dir, keep_logs=args.keep_logs,
                 echo=lambda line: print(line, flush=True),
                 show_console=_print_console if getattr(args, "show_console", False) else None)
    except BootError as e:
        print(f"mali-vdev boot failed: {e}", file=sys.stderr)
        return 124 if str(e).startswith("timeout") else 1
    except KeyboardInterrupt:
        print("mali-vdev boot interrupted", file=sys.stderr)
        return 130
    except RuntimeError as e:
        print(f"mali-vdev boot failed: {e}", file=sys.stderr)
        return 1
    t = r.timings
    cache.step(f"guest command exited with status {r.status}; kernel {r.kernel_version}; "
               f"/init at {t.get('init', '?')} s, done at {t.get('cmd_exit', '?')} s, "
               f"total {t.get('total')} s" + (f"; logs in {r.log_dir}" if r.log_dir else ""))
    return r.status


def add_setup_arguments(parser: argparse.ArgumentParser) -> None:
    """(No options yet; kept so the CLI can grow e.g. --guest-packages.)"""


def run_setup(args: argparse.Namespace) -> int:
    try:
        p = setup()
    except RuntimeError as e:
        print(f"mali-vdev setup failed: {e}", file=sys.stderr)
        return 1
    a = p.assets
    print(f"cache:      {cache.cache_root()}")
    print(f"QEMU:       {p.qemu.describe()}")
    print(f"kernel:     {a.kernel_version} ({a.kernel})")
    for name, version in a.packages.items():
        print(f"package:    {name} {version}")
    print(f"initramfs:  {p.initramfs}")
    print(f"device tree:{p.dtb}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m qemu.boot [setup|boot] ...` for use before the project CLI wires it up."""
    parser = argparse.ArgumentParser(prog="python -m qemu.boot")
    sub = parser.add_subparsers(dest="cmd", required=True)
    add_setup_arguments(sub.add_parser("setup", help="fetch/build the guest assets"))
    add_boot_arguments(sub.add_parser("boot", help="boot the guest and run a command"))
    args = parser.parse_args(argv)
    return run_setup(args) if args.cmd == "setup" else run_boot(args)


if __name__ == "__main__":
    sys.exit(main())
