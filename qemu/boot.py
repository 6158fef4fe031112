"""Booting the arm64 guest against our vfio-user server: setup, one boot, CLI glue.

`setup()` fetches/builds every asset (QEMU, kernel, modules, busybox, initramfs, DTB,
the cross-compiled guest tools, optional extra Debian packages) into the cache; `boot()`
adds the firmware layer for the chosen GPU and firmware kind, runs one guest command and
returns its output and exit status.  `add_*_arguments`/`run_*` are what the project CLI
calls.

The guest initrd is the cached base + firmware layer + tools layer (`/usr/bin/
panthor-client`) + guest-packages layer (+ `/usr/bin/mesa-cases` with Mesa) + the command (see `qemu/initramfs.py`).  The
server gets `--gpu` and `--timestamp-hz` = the guest CPU's counter frequency, plus the
debugging options of a boot (trace, fault injections, watch/break with QEMU's QMP sockets;
see `boot()`); `--corrupt-firmware` adds a layer after the firmware layer.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from mali_regs.profiles import get_profile, profile_names
from qemu import added_files, cache, devicetree, gdb, initramfs, kmodules, qemu_binary, share, shell, tools
from qemu import assets as guest_assets
from qemu import firmware as fw_layer
from qemu import guest_packages as pkg_layer
from qemu.console import OUT, ConsoleMonitor
from qemu.launcher import Session, guest_counter_hz, machine_args, serial_args, vfio_user_device
from qemu.monitor import Monitor, QmpError

# Read GPU_ID (BAR0 offset 0) through the real PCI -> vfio-user path.
DEFAULT_GUEST_CMD = "devmem 0x10000000 32"
DEFAULT_TIMEOUT_S = 180.0
# cortex-a72 boots faster under TCG than "max" (no pointer-authentication emulation).
CPU, SMP, MEM_MB = "cortex-a72", 1, 1024
# What /init may load on the GPU node (`--driver`); `none` leaves it unbound.
DRIVERS = ("panthor", "tyr", "none")
POWEROFF_GRACE_S = 10.0
WATCH_JOIN_S = 30.0
TRACE_FORMATS = ("binary", "jsonl", "mmiotrace", "perfetto")
# A traced server flushes its buffer and writes the format's trailer on SIGTERM.
TRACED_SERVER_GRACE_S = 30.0
# How often the boot asks QEMU whether a break paused it (the pause does not count
# against the timeout).
PAUSE_POLL_S = 0.5
# QEMU run states in which the guest does not run: a --break (paused), -S before the first
# continue (prelaunch), a gdb stop (debug)
PAUSED_STATES = ("paused", "prelaunch", "debug")


class BootError(RuntimeError):
    """The guest command did not run to its end marker (timeout, panic, crash...)."""

    def __init__(self, message: str, result: "BootResult"):
        super().__init__(message)
        self.result = result


@dataclass
class Prepared:
    qemu: qemu_binary.QemuBinary
    assets: guest_assets.GuestAssets
    initramfs: Path                     # the cached base archive
    dtb: Path
    machine: list[str]
    layers: list[Path] = field(default_factory=list)  # tools, guest packages (appended)
    cpu: str = CPU
    guest_packages: list[str] = field(default_factory=list)
    memory_mb: int = MEM_MB             # what `machine` and `dtb` were made for


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
    gpu: str = ""                       # profile key the server ran
    firmware: str = ""                  # generated | arm | none
    timestamp_hz: int = 0               # what the server was told (--timestamp-hz)
    # The server's control-socket `status` once the guest command ended (MCU boots, firmware
    # pings, resets, address spaces...); None if it could not be asked.
    server_status: dict | None = None
    # What the `watch` callbacks saw and returned, by pattern (see boot()).
    watched: dict[str, "Watched"] = field(default_factory=dict)
    trace: Path | None = None           # the server's trace file (--trace), complete
    pauses: int = 0                     # times QEMU stopped (a --break): its STOP events


class Live:
    """The running server (and QEMU), as a `watch` callback sees them while the guest runs."""

    def __init__(self, control: Path, t0: float, monitor: Monitor | None = None):
        self.control = control   # the server's control socket (JSON lines, mali_gpu/control.py)
        self.t0 = t0
        # QEMU's QMP, the launcher's own socket (boots with `qmp=True` or break_regs only).
        self.monitor = monitor
        self.console: ConsoleMonitor | None = None
        self.server_pid: int | None = None     # the server's and QEMU's processes
        self.qemu_pid: int | None = None

    def qmp(self, command: str, **arguments):
        """A QMP command to the running QEMU (e.g. "query-status"); its `return` value."""
        if self.monitor is None:
            raise RuntimeError("this boot has no QMP socket (boot(..., qmp=True))")
        return self.monitor.execute(command, **arguments)

    def console_lines(self) -> int:
        """How many serial console lines QEMU has printed so far."""
        return self.console.line_count if self.console is not None else 0

    def request(self, req: dict, timeout: float = 10.0) -> dict:
        from mali_gpu.control import request
        return request(str(self.control), req, timeout=timeout)

    def status(self) -> dict:
        return self.request({"cmd": "status"})

    def gpu_read(self, va: int, size: int, address_space: int | str = "any") -> dict:
        """GPU memory at `va` through the user address spaces (or AS n), without faults."""
        return self.request({"cmd": "gpu_read", "as": address_space, "va": va, "size": size})


@dataclass
class Watched:
    """One `watch` pattern that matched: the line, the callback's value or exception."""
    line: str
    at: float                      # seconds since QEMU started
    value: Any = None
    error: BaseException | None = None
    done: bool = False


WatchCallback = Callable[[Live, str], Any]


class _Watcher:
    """Runs each watch callback once, in its own thread, on the first output line matching
    its pattern (re.search); the console reader never waits for a callback."""

    def __init__(self, watch: Mapping[str, WatchCallback], live: Live, echo=None):
        self.patterns = [(p, re.compile(p), cb) for p, cb in watch.items()]
        self.live, self.echo = live, echo
        self.seen: dict[str, Watched] = {}
        self.threads: list[threading.Thread] = []

    def __call__(self, line: str) -> None:
        if self.echo:
            self.echo(line)
        for pattern, rx, cb in self.patterns:
            if pattern not in self.seen and rx.search(line):
                w = self.seen[pattern] = Watched(line, round(time.monotonic() - self.live.t0, 3))
                t = threading.Thread(target=self._run, args=(w, cb, line), daemon=True,
                                     name=f"watch {pattern}")
                self.threads.append(t)
                t.start()

    def _run(self, w: Watched, cb: WatchCallback, line: str) -> None:
        try:
            w.value = cb(self.live, line)
        except BaseException as e:  # noqa: BLE001 - handed to the caller in BootResult.watched
            w.error = e
        finally:
            w.done = True

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))


def setup(build: bool = True, kernel: Path | None = None, modules: Path | None = None,
          guest_packages: list[str] | str | None = None, with_tools: bool = True) -> Prepared:
    """Everything a boot needs, from the cache or fetched/built now.

    `kernel`/`modules`: a user's own kernel Image and its modules (both or neither).
    `guest_packages`: Debian arm64 package names added with their dependencies.
    `with_tools`: build panthor-client (needs the arm64 cross compiler), and mesa-cases when
    `guest_packages` names one of Mesa's (guest_packages.MESA_PACKAGES); if a tool cannot be
    built the boot goes on without it, with a warning.
    """
    cache.step(f"cache: {cache.cache_root()}")
    qemu = qemu_binary.find_qemu(build=build)
    cache.step(f"using {qemu.describe()}")
    assets = guest_assets.fetch_assets(kernel=kernel, modules=modules)
    base = initramfs.build_base(assets)
    machine = machine_args(CPU, SMP, MEM_MB)
    dtb = devicetree.build_dtb(qemu, [*machine, *serial_args("null", "null")],
                               cache.cache_root() / "dtb")
    layers = []
    if with_tools:
        try:
            layers.append(tools.tools_archive())
        except tools.ToolBuildError as e:
            cache.step(f"warning: {e}; booting without /usr/bin/panthor-client")
    names = pkg_layer.parse_names(guest_packages)
    pkgs = pkg_layer.packages_archive(names) if names else None
    if pkgs is not None:
        layers.append(pkgs)
    if with_tools and set(names) & set(pkg_layer.MESA_PACKAGES):
        try:
            layers.append(tools.mesa_tools_archive())
        except (tools.ToolBuildError, RuntimeError, KeyError) as e:
            cache.step(f"warning: {e}; booting without /usr/bin/mesa-cases")
    return Prepared(qemu, assets, base, dtb, machine, layers, CPU, names)


def kernel_cmdline(driver: str, extra: str = "") -> str:
    """The guest's command line; /init loads `driver` (panthor, tyr or none)."""
    parts = ["console=ttyAMA0", "rdinit=/init", "panic=-1", f"mali.driver={driver}"]
    return " ".join(parts + ([extra] if extra else []))


def check_driver(driver: str, assets: guest_assets.GuestAssets) -> None:
    """Refuse a driver the guest's kernel has no module for, saying how to get one."""
    if driver not in DRIVERS:
        raise ValueError(f"unknown driver {driver!r}; choose one of {', '.join(DRIVERS)}")
    if driver in ("none", kmodules.DEFAULT_DRIVER):
        return
    if kmodules.canonical(driver) not in kmodules.index(assets.modules_dir):
        raise RuntimeError(
            f"the kernel {assets.kernel_version} has no {driver}.ko (Debian builds DRM as a "
            f"module, which Tyr cannot use); build a kernel with it: `mali-vdev kernel build "
            f"--version 7.2` (or 7.3), then boot with `--kernel built` (or built:7.3)")


def resolve_kernel(kernel: Path | str | None, modules: Path | None,
                   build: bool = True) -> tuple[Path | None, Path | None]:
    """`--kernel built[:VERSION|:NAME]` -> a kernel of `mali-vdev kernel build` (built now
    if none is cached and `build`); other values pass through."""
    if kernel is None or not str(kernel).startswith("built"):
        return kernel, modules
    spec = str(kernel)
    if spec != "built" and not spec.startswith("built:"):
        return kernel, modules
    if modules is not None:
        raise RuntimeError("--kernel built brings its own modules; leave out --modules")
    from qemu import kernel_build
    try:
        k = kernel_build.find_built(spec)
    except RuntimeError:
        if not build:
            raise
        version = spec.partition(":")[2] or kernel_build.DEFAULT_VERSION
        cache.step(f"no built kernel for {spec!r} yet: building Linux {version} now")
        k = kernel_build.build(version)
    cache.step(f"using the built kernel {k.name} ({k.release}, {k.source})")
    return k.image, k.modules


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


@dataclass
class BootOptions:
    """What one boot does: the options of `mali-vdev boot`, as data.

    `guest_cmd` runs in the guest after /init loaded `driver` (panthor, the default; tyr, on
    a kernel built with it; none). `firmware`: `generated` (ours), `arm` (Debian's) or `none`,
    at the GPU's firmware path; `corrupt_firmware` (magic|version|truncate|flags) puts a
    spoiled image there and the good one under /lib/firmware/mali-good/ (qemu/firmware.py).
    `kernel`/`modules`/`guest_packages` go to `setup()` when no `Prepared` is given
    (`kernel="built[:VERSION]"`: a kernel of `mali-vdev kernel build`). `add`: host files
    and trees at guest paths (`HOST:GUEST`, qemu/added_files.py); `memory_mb`: guest RAM
    (default: enough for the initramfs, at least 1 GiB; too little is refused). `timestamp_hz`
    overrides the server's GPU timestamp frequency (default: the guest CPU's counter
    frequency, which is what it must be).

    Debugging options, passed to `mali-vdev serve`: `trace` (a file, complete when the boot
    returns; `trace_format` binary|jsonl|mmiotrace|perfetto), `inject` (fault specs,
    `KIND[:key=value,...]`), `inject_file` (TOML), `watch_regs` (log matching register
    accesses), `break_regs` (pause the guest on a matching access: QEMU then gets QMP sockets
    and the server `--qmp`; resume with `mali-vdev continue --control SOCK.ctl`; time spent
    paused does not count against `timeout`). `qmp=True` gives QEMU the QMP sockets without a
    break (`Live.qmp()`). `server_program` replaces `python -m mali_vdev` (e.g. a stand-in
    server in tests); `server_args` and `extra_append` (kernel command line) are appended.

    `server_socket`: boot against a `mali-vdev serve` that is already running there (its
    control socket SOCKET.ctl) instead of starting one; the boot neither starts nor stops it,
    so one server meets a second QEMU after the first went away (`mali-vdev boot --server`).
    Start it with the `--gpu`/`--timestamp-hz` this boot would give its own server
    (`plan_boot(o, p).server_args`); the server options above do not apply to it.
    """
    guest_cmd: str = DEFAULT_GUEST_CMD
    timeout: float = DEFAULT_TIMEOUT_S
    gpu: str | None = None
    driver: str = kmodules.DEFAULT_DRIVER
    firmware: str = fw_layer.DEFAULT
    corrupt_firmware: str | None = None
    kernel: Path | str | None = None
    modules: Path | None = None
    guest_packages: list[str] | str | None = None
    add: Sequence[str] = ()             # HOST_PATH:GUEST_PATH, files and trees
    share: Sequence[str] = ()           # HOST_DIR[:GUEST_PATH], virtio-9p (qemu/share.py)
    memory_mb: int | None = None        # default: enough for what the initramfs carries
    timestamp_hz: int | None = None
    trace: Path | str | None = None
    trace_format: str = "binary"
    inject: Sequence[str] = ()
    inject_file: Path | str | None = None
    watch_regs: Sequence[str] = ()
    break_regs: Sequence[str] = ()
    qmp: bool = False
    log_dir: Path | None = None
    keep_logs: bool = False
    server_args: Sequence[str] = ()
    extra_append: str = ""
    server_program: list[str] | None = None
    interactive: bool = False           # `mali-vdev shell`: the user's terminal on ttyAMA1
    gdb_port: int | None = None         # QEMU's gdbstub on 127.0.0.1:PORT (qemu/gdb.py)
    gdb_wait: bool = False              # start paused until gdb continues
    server_socket: Path | str | None = None   # an already running server's socket

    def check(self) -> None:
        """Refuse what cannot boot before anything is fetched or started."""
        if self.trace_format not in TRACE_FORMATS:
            raise ValueError(f"unknown trace format {self.trace_format!r}; "
                             f"choose one of {', '.join(TRACE_FORMATS)}")
        if self.driver not in DRIVERS:
            raise ValueError(f"unknown driver {self.driver!r}; choose one of {', '.join(DRIVERS)}")
        get_profile(self.gpu)   # KeyError naming the profiles
        if self.server_socket is not None:
            own = [n for n, v in (("trace", self.trace), ("inject", self.inject), ("inject_file", self.inject_file),
                                  ("watch_regs", self.watch_regs), ("break_regs", self.break_regs),
                                  ("server_args", self.server_args), ("server_program", self.server_program)) if v]
            if own:
                raise ValueError(f"{', '.join(own)}: options of a server this boot starts, not of the running "
                                 f"one at {self.server_socket} (give them to its `mali-vdev serve`)")
            if not stat.S_ISSOCK(os.stat(self.server_socket).st_mode):
                raise ValueError(f"{self.server_socket} is not a socket")

    @property
    def use_qmp(self) -> bool:
        # a gdb stop pauses QEMU: the pause clock (QMP) keeps it out of the timeout
        return self.qmp or bool(self.break_regs) or self.gdb_port is not None


@dataclass
class BootHooks:
    """Callbacks while the guest runs. `echo(line)`: each output line of the guest command;
    `show_console(line)`: every console line (kernel messages too). `watch` maps regular
    expressions to callbacks `cb(live, line)`: the first output line of the guest command
    that matches a pattern starts its callback in a thread, with a `Live` handle on the
    running server (its control socket: `status()`, `gpu_read()`, `request()`), e.g. to
    check the server's state while the guest holds something. The boot waits for the
    callbacks (up to 30 s) before it stops the server; their values or exceptions are in
    `BootResult.watched[pattern]`. `console_watch` does the same for every serial console
    line (kernel messages too, from the first one on; its patterns share `watched`)."""
    echo: Callable[[str], None] | None = None
    show_console: Callable[[str], None] | None = None
    watch: Mapping[str, WatchCallback] | None = None
    console_watch: Mapping[str, WatchCallback] | None = None


@dataclass
class BootPlan:
    """Everything of a boot that is decided before a process starts."""
    profile: Any
    timestamp_hz: int
    layers: list[Path]              # appended to the base initramfs, in order
    server_args: list[str]          # for `mali-vdev serve` (the sockets are added at start)
    cmdline: str
    trace: Path | None
    memory_mb: int = MEM_MB
    carried: int = 0                # bytes of initramfs: base + layers
    machine: list[str] = field(default_factory=list)
    dtb: Path | None = None
    shares: list = field(default_factory=list)


def plan_boot(o: BootOptions, p: Prepared) -> BootPlan:
    """The initrd layers, server options and kernel command line of a boot (builds the
    firmware layers, which are cached files; starts nothing)."""
    o.check()
    check_driver(o.driver, p.assets)
    profile = get_profile(o.gpu)
    ts_hz = o.timestamp_hz or guest_counter_hz(p.cpu)
    fw = fw_layer.firmware_archive(o.firmware, profile, p.assets)
    bad_fw = (fw_layer.corrupt_archive(o.corrupt_firmware, o.firmware, profile, p.assets)
              if o.corrupt_firmware else None)
    added = added_files.added_archive(list(o.add))
    layers = [*([fw] if fw else []), *([bad_fw] if bad_fw else []), *p.layers,
              *([added] if added else [])]
    trace = Path(o.trace).absolute() if o.trace else None
    server = [*o.server_args, "--gpu", profile.key, "--timestamp-hz", str(ts_hz),
              *debug_server_args(trace, o.trace_format, o.inject, o.inject_file,
                                 o.watch_regs, o.break_regs)]
    carried = sum(f.stat().st_size for f in (p.initramfs, *layers) if f.exists())
    memory = added_files.guest_memory_mb(carried, o.memory_mb)
    machine, dtb = p.machine, p.dtb
    if memory != p.memory_mb:   # the DTB describes the RAM: QEMU's own, for this size
        machine = machine_args(p.cpu, SMP, memory)
        dtb = devicetree.build_dtb(p.qemu, [*machine, *serial_args("null", "null")],
                                   cache.cache_root() / "dtb")
    shares = share.parse(list(o.share))
    extra = " ".join(filter(None, ["mali.shell=1" if o.interactive else "",
                                   "nokaslr" if o.gdb_port is not None else "",
                                   share.cmdline(shares), o.extra_append]))
    return BootPlan(profile, ts_hz, layers, server, kernel_cmdline(o.driver, extra),
                    trace, memory, carried, machine, dtb, shares)


def qemu_args(p: Prepared, plan: BootPlan, s: Session, initrd: Path, out_sock: Path,
              use_qmp: bool, o: BootOptions) -> list[str]:
    """QEMU's command line: the machine, both UARTs, kernel/initrd/DTB and our device."""
    return [*(plan.machine or p.machine), *serial_args("stdio", f"unix:{p.qemu.path(out_sock)}"),
            "-monitor", "none", "-no-reboot",
            *(s.qmp_args() if use_qmp else []),
            "-kernel", p.qemu.stage(p.assets.kernel, s.scratch),
            "-initrd", p.qemu.path(initrd), "-dtb", p.qemu.stage(plan.dtb or p.dtb, s.scratch),
            "-append", plan.cmdline,
            "-device", vfio_user_device(p.qemu, Path(o.server_socket) if o.server_socket else s.socket),
            *share.qemu_args(plan.shares, p.qemu.path),
            *(gdb.qemu_args(o.gdb_port, o.gdb_wait) if o.gdb_port is not None else [])]


_HOOKS = ("echo", "show_console", "watch", "console_watch")


def boot(guest_cmd: str = DEFAULT_GUEST_CMD, timeout: float = DEFAULT_TIMEOUT_S, *,
         prepared: Prepared | None = None, load_panthor: bool | None = None,
         **kw: Any) -> BootResult:
    """Boot the guest, run `guest_cmd` in it, return its output and exit status.

    Keyword arguments are the fields of `BootOptions` and `BootHooks` (see there);
    `load_panthor=True`/`False` is the older spelling of driver="panthor"/"none".
    Raises BootError (carrying the partial BootResult and log tails) if the command does
    not finish: timeout, kernel panic, QEMU or server failure."""
    hooks = BootHooks(**{k: kw.pop(k) for k in _HOOKS if k in kw})
    if load_panthor is not None and "driver" not in kw:
        kw["driver"] = kmodules.DEFAULT_DRIVER if load_panthor else "none"
    return run(BootOptions(guest_cmd, timeout, **kw), hooks, prepared)


def run(o: BootOptions, hooks: BootHooks = BootHooks(), prepared: Prepared | None = None
        ) -> BootResult:
    """One boot of `o`: setup (unless `prepared`), plan, then server + QEMU until the
    guest command's end marker."""
    o.check()
    kernel, modules = resolve_kernel(o.kernel, o.modules)
    p = prepared or setup(kernel=kernel, modules=modules, guest_packages=o.guest_packages)
    plan = plan_boot(o, p)
    use_qmp = o.use_qmp
    status = None
    with _sigterm_as_interrupt(), Session(p.qemu, o.log_dir, o.keep_logs) as s, \
            (Monitor(s.monitor_socket) if use_qmp else nullcontext()) as monitor:
        control = Path(f"{o.server_socket or s.socket}.ctl")
        extra = [*plan.server_args, "--control", str(control)]
        if use_qmp:
            extra += ["--qmp", str(s.qmp_socket)]
        if plan.trace is not None:
            s.server_grace_s = TRACED_SERVER_GRACE_S
        initrd = initramfs.write_boot_initrd(p.initramfs, o.guest_cmd,
                                             s.scratch / "initrd.cpio", plan.layers)
        if o.server_socket:
            cache.step(f"using the running server at {o.server_socket} (control socket {control})")
        else:
            cache.step(f"starting the vfio-user server (control socket {control})")
            s.start_server(extra, o.server_program)
        # /init's output: a socket QEMU connects to at start-up (ttyAMA1)
        out_sock = s.scratch / "guest-out.sock"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(out_sock))
        listener.listen(1)
        args = qemu_args(p, plan, s, initrd, out_sock, use_qmp, o)
        if o.gdb_port is not None:
            vmlinux = gdb.symbols(p.assets.kernel, p.assets.kernel_version,
                                  debian_kernel=not p.assets.modules_digest)
            cache.step(f"gdbstub on {gdb.HOST}:{o.gdb_port}"
                       + (" (the kernel waits for gdb's continue)" if o.gdb_wait else "")
                       + f"; attach with: {gdb.command_line(o.gdb_port, vmlinux)}")
        cache.step(f"booting Linux {p.assets.kernel_version} under {p.qemu.describe()}: "
                   f"{plan.profile.name}, driver {o.driver}, {o.firmware} firmware, "
                   f"{plan.memory_mb} MiB RAM"
                   f"{f' ({o.corrupt_firmware} corrupted)' if o.corrupt_firmware else ''}, "
                   f"timestamp {plan.timestamp_hz} Hz")
        t0 = time.monotonic()
        vm = s.start_qemu(args)
        console_path = s.log_dir / "console.log"
        live = Live(control, t0, monitor)
        live.server_pid = s.server.proc.pid if s.server else None
        live.qemu_pid = vm.proc.pid
        watcher = _Watcher(hooks.watch, live, hooks.echo) if hooks.watch else None
        cwatcher = (_Watcher(hooks.console_watch, live, hooks.show_console)
                    if hooks.console_watch else None)
        with open(console_path, "w") as log:
            mon = ConsoleMonitor(vm.proc.stdout, log, t0, on_output=watcher or hooks.echo,
                                 on_line=cwatcher or hooks.show_console)
            live.console = mon
            mon.start()
            pause = _PauseClock(monitor, control, s.log_dir / "server.log")
            if o.interactive:
                failure = _shell_session(listener, mon, vm, s)
            else:
                mon.add_listener(listener)
                failure = _wait(mon, vm, s, t0, o.timeout, pause)
            for w in (watcher, cwatcher):
                if w is not None:
                    w.join(WATCH_JOIN_S)
            if failure is None:  # /init powers off; give QEMU a moment to exit by itself
                try:
                    vm.proc.wait(POWEROFF_GRACE_S)
                except subprocess.TimeoutExpired:
                    pass
            status = server_status(control, s)
            if monitor is not None:
                try:
                    monitor.status()  # the last STOP/RESUME events, if QEMU is still there
                except QmpError:
                    pass
                monitor.close()
            s.stop()
            mon.join(5)
        timings = dict(mon.times, total=round(time.monotonic() - t0, 3))
        if pause.pauses:
            timings["paused"] = round(pause.total(), 3)
        result = BootResult(
            status=mon.exit_status, output="".join(l + "\n" for l in mon.output),
            console_log=_read(console_path), server_log=_read(s.log_dir / "server.log"),
            qemu_log=_read(s.log_dir / "qemu.log"), kernel_version=p.assets.kernel_version,
            timings=timings, gpu=plan.profile.key, firmware=o.firmware,
            timestamp_hz=plan.timestamp_hz, server_status=status, trace=plan.trace,
            pauses=pause.pauses,
            watched={**(cwatcher.seen if cwatcher else {}), **(watcher.seen if watcher else {})})
    result.log_dir = s.log_dir if s.keep_logs else None  # where close() moved them
    m = re.search(r"Initramfs unpacking failed: (.*)", result.console_log)
    if m:   # the guest runs on with part of its files: whatever it did next is misleading
        carried = plan.carried
        failure = (f"the guest could not unpack its initramfs ({m.group(1).strip()}; "
                   f"{carried >> 20} MiB in {plan.memory_mb} MiB of RAM): pass --memory "
                   f"{max(plan.memory_mb * 2, added_files.memory_needed_mb(carried))}")
    if failure is not None:
        raise BootError(_explain(failure, result), result)
    return result


def debug_server_args(trace: Path | None = None, trace_format: str = "binary",
                      inject: Sequence[str] = (), inject_file: Path | str | None = None,
                      watch_regs: Sequence[str] = (), break_regs: Sequence[str] = ()) -> list[str]:
    """`mali-vdev serve` options for tracing, fault injection and watch/break (paths made
    absolute: the server runs in the repository)."""
    out: list[str] = []
    if trace is not None:
        out += ["--trace", str(Path(trace).absolute()), "--trace-format", trace_format]
    for spec in inject:
        out += ["--inject", spec]
    if inject_file is not None:
        path = Path(inject_file).absolute()
        if not path.is_file():
            raise ValueError(f"no fault injection file {inject_file}")
        out += ["--inject-file", str(path)]
    for spec in watch_regs:
        out += ["--watch", spec]
    for spec in break_regs:
        out += ["--break", spec]
    return out


class _PauseClock:
    """Time QEMU spends paused (by a --break), asked over the launcher's QMP socket; it
    does not count against the boot's timeout. No monitor: never paused."""

    def __init__(self, monitor: Monitor | None, control: Path, server_log: Path | None = None):
        self.monitor, self.control, self.server_log = monitor, control, server_log
        self.paused_s = 0.0
        self._seen = 0         # pauses this clock noticed (two close ones may look like one)
        self._since: float | None = None
        self._next = 0.0

    def poll(self) -> None:
        now = time.monotonic()
        if self.monitor is None or now < self._next:
            return
        self._next = now + PAUSE_POLL_S
        try:
            state = self.monitor.status()
            paused = state in PAUSED_STATES
        except QmpError:
            return  # QEMU going away: the boot loop sees that itself
        if paused and self._since is None:
            self._since = now
            self._seen += 1
            if state == "prelaunch":
                cache.step("QEMU waits for gdb to continue (--gdb-wait)")
            elif state == "debug":
                cache.step("the guest is stopped by gdb")
            else:
                cache.step(f"the guest is paused ({self._last_break() or 'a --break matched'}); "
                           f"resume it with: mali-vdev continue --control {self.control}")
        elif not paused and self._since is not None:
            self.paused_s += now - self._since
            self._since = None

    @property
    def pauses(self) -> int:
        """Times QEMU stopped: its STOP events (every QMP monitor gets them)."""
        if self.monitor is None:
            return 0
        return max(self._seen, sum(e.get("event") == "STOP" for e in self.monitor.events))

    def _last_break(self) -> str | None:
        """The server's log line for the break that paused the guest (mali_gpu/watch.py)."""
        if self.server_log is None:
            return None
        hits = re.findall(r"(break #\d+: .*)", _read(self.server_log))
        return hits[-1].strip() if hits else None

    def total(self) -> float:
        """Seconds paused so far, the current pause included."""
        extra = time.monotonic() - self._since if self._since is not None else 0.0
        return self.paused_s + extra


def server_status(control: Path, s: Session) -> dict | None:
    """The server's `status` over its control socket (the device keeps its state after
    QEMU disconnects), or None if there is no such socket or it does not answer."""
    if s.server is not None and not s.server.alive() or not control.exists():
        return None
    try:
        from mali_gpu.control import request
        answer = request(str(control), {"cmd": "status"}, timeout=5.0)
    except (ImportError, OSError, ValueError):
        return None
    return answer if isinstance(answer, dict) else None


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _wait(mon: ConsoleMonitor, vm, s: Session, t0: float, timeout: float,
          pause: _PauseClock | None = None) -> str | None:
    """Block until the exit marker (None) or a failure (its description)."""
    pause = pause or _PauseClock(None, Path())
    while True:
        mon.changed.wait(0.2)
        mon.changed.clear()
        pause.poll()
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
        if time.monotonic() - t0 - pause.total() > timeout:
            return f"timeout: no end marker after {timeout:.0f} s" + (
                f" (not counting {pause.total():.0f} s paused)" if pause.pauses else "")


def _shell_session(listener: socket.socket, mon: ConsoleMonitor, vm, s: Session) -> str | None:
    """The user's terminal on the guest's ttyAMA1 until the shell ends or the user quits
    (qemu/shell.py); the failure, if the guest or the server went away unasked."""
    listener.settimeout(30.0)   # QEMU connects its -serial socket at start-up
    try:
        conn, _ = listener.accept()
    except OSError as e:
        return f"QEMU did not connect the shell's UART: {e}"
    finally:
        listener.close()
    alive = lambda: vm.alive() and (s.server is None or s.server.alive())  # noqa: E731
    with conn, shell.raw_terminal(sys.stdin.fileno()):
        why = shell.bridge(conn, sys.stdin.fileno(), sys.stdout.fileno(), alive)
    if why in ("escape", "eof"):
        return None                      # the user left: everything is torn down
    mon.join(5)
    if mon.exit_status is not None:      # the shell exited and /init powered off
        return None
    if s.server and not s.server.alive():
        return f"the server exited (status {s.server.proc.returncode}) during the shell"
    return f"QEMU exited (status {vm.proc.poll()}) before the shell ended"


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
    parser.add_argument("--gpu", metavar="NAME",
                        help=f"GPU profile ({', '.join(profile_names())}; default g610)")
    parser.add_argument("--driver", choices=DRIVERS, default=None,
                        help="the GPU driver /init loads before the command: panthor "
                             "(default), tyr (needs a kernel of `mali-vdev kernel build`: "
                             "--kernel built) or none; switch at run time in the guest with "
                             "`mali-driver switch tyr|panthor`")
    parser.add_argument("--load-panthor", action="store_true",
                        help="load panthor (the default; kept for older command lines)")
    parser.add_argument("--firmware", choices=fw_layer.CHOICES, default=fw_layer.DEFAULT,
                        help="CSF firmware at the GPU's arm/mali/arch*/mali_csffw.bin: our "
                             "generated free image (default), Arm's from Debian's "
                             "firmware-misc-nonfree, or none")
    _add_guest_arguments(parser)
    _add_debug_arguments(parser)
    parser.add_argument("--log-dir", type=Path, metavar="DIR",
                        help="write console/server/QEMU logs to DIR (kept)")
    parser.add_argument("--keep-logs", action="store_true",
                        help="keep the logs of the boot (their directory is printed)")
    parser.add_argument("--show-console", action="store_true",
                        help="echo the whole serial console (kernel messages) to stderr")


def _add_debug_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("debugging (passed to the server; see mali-vdev serve)")
    g.add_argument("--trace", type=Path, metavar="FILE",
                   help="record every event of the virtual GPU to FILE (read it with "
                        "`mali-vdev trace`)")
    g.add_argument("--trace-format", choices=TRACE_FORMATS, default="binary",
                   help="format of --trace (default %(default)s)")
    g.add_argument("--inject", action="append", metavar="SPEC",
                   help="arm a fault injection, KIND[:key=value,...] (kinds: mcu_boot_fail, "
                        "drop_ping_ack, stall_csg, as_active_stuck, mmu_fault, gpu_fault, "
                        "cs_fatal; see mali_base/faults.py); repeatable")
    g.add_argument("--inject-file", type=Path, metavar="FILE",
                   help="fault injections from a TOML file of [[inject]] tables")
    g.add_argument("--watch", dest="watch_regs", action="append", metavar="REG[:r|w][=V]",
                   help="log every matching register access, decoded, in the server log; "
                        "repeatable")
    g.add_argument("--break", dest="break_regs", action="append", metavar="REG[:r|w][=V]",
                   help="pause the guest (QMP stop) on a matching register access; resume "
                        "with `mali-vdev continue --control SOCK.ctl` (printed); repeatable")
    g.add_argument("--corrupt-firmware", choices=fw_layer.CORRUPT_MODES, metavar="MODE",
                   help="put a corrupted firmware image at the firmware path (MODE: "
                        f"{', '.join(fw_layer.CORRUPT_MODES)}) and the good one under "
                        f"/lib/firmware/{fw_layer.GOOD_SUBDIR}/; the guest recovers with "
                        f"`cp -r /lib/firmware/{fw_layer.GOOD_SUBDIR}/* /lib/firmware/; echo "
                        "10000000.gpu > /sys/bus/platform/drivers/panthor/bind`")


def _check_debug_arguments(args: argparse.Namespace) -> None:
    """Refuse bad fault specs and files before anything is fetched or started."""
    from mali_base.faults import load_file, parse_spec
    for spec in getattr(args, "inject", None) or ():
        parse_spec(spec)
    if getattr(args, "inject_file", None):
        try:
            load_file(str(args.inject_file))
        except OSError as e:
            raise ValueError(f"--inject-file: {e}") from None
        except Exception as e:  # tomllib's errors too
            raise ValueError(f"--inject-file {args.inject_file}: {e}") from None
    if getattr(args, "trace", None) and not args.trace.absolute().parent.is_dir():
        raise ValueError(f"--trace: no directory {args.trace.absolute().parent}")
    if getattr(args, "corrupt_firmware", None) and args.firmware == "none":
        raise ValueError("--corrupt-firmware needs a firmware image (not --firmware none)")


def _add_guest_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kernel", metavar="IMAGE|built[:VERSION]",
                        help="boot this arm64 kernel Image instead of Debian's (needs "
                             "--modules), or `built` / `built:7.3` for a kernel of `mali-vdev "
                             "kernel build` (built first if there is none)")
    parser.add_argument("--modules", type=Path, metavar="DIR",
                        help="its modules: a lib/modules/<release> tree or a directory of "
                             ".ko/.ko.xz/.ko.gz files (panthor and what it depends on)")
    parser.add_argument("--guest-packages", action="append", metavar="PKG,...",
                        help="add these Debian sid arm64 packages and their dependencies to "
                             "the guest (repeatable)")
    parser.add_argument("--add", action="append", default=[], metavar="HOST_PATH:GUEST_PATH",
                        help="put a host file or tree at GUEST_PATH in the guest's initramfs "
                             "(modes and symlinks kept; repeatable)")
    parser.add_argument("--share", action="append", default=[], metavar="HOST_DIR[:GUEST_PATH]",
                        help="mount a host folder read-write in the guest (virtio-9p; default "
                             "guest path /mnt/host; repeatable)")
    parser.add_argument("--gdb", nargs="?", type=int, const=gdb.DEFAULT_PORT, metavar="PORT",
                        help=f"QEMU's gdbstub on {gdb.HOST}:PORT (default {gdb.DEFAULT_PORT}); "
                             "the gdb command line with the kernel's symbols is printed")
    parser.add_argument("--gdb-wait", action="store_true",
                        help="with --gdb: the kernel starts only when gdb continues")
    parser.add_argument("--memory", type=int, metavar="MB",
                        help="guest RAM in MiB (default: enough for what the initramfs "
                             "carries, at least 1024)")
    parser.add_argument("--server", metavar="SOCKET",
                        help="attach to a `mali-vdev serve --socket SOCKET` already running (started "
                             "with this boot's --gpu; it is neither started nor stopped here)")


def _print_console(line: str) -> None:
    if OUT not in line:  # the command's own lines go to stdout via `echo`
        print(f"console| {line}", file=sys.stderr, flush=True)


def options_from_args(args: argparse.Namespace) -> BootOptions:
    """`mali-vdev boot`'s options as a BootOptions (checked; nothing fetched yet)."""
    if args.driver and args.load_panthor and args.driver != "panthor":
        raise ValueError(f"--load-panthor contradicts --driver {args.driver}")
    if args.gpu:
        get_profile(args.gpu)  # unknown names fail before anything is fetched
    _check_debug_arguments(args)
    o = BootOptions(
        args.guest_cmd, args.timeout, gpu=args.gpu, driver=args.driver or "panthor",
        firmware=args.firmware, kernel=args.kernel, modules=args.modules,
        guest_packages=args.guest_packages, log_dir=args.log_dir, keep_logs=args.keep_logs,
        add=getattr(args, "add", None) or (), memory_mb=getattr(args, "memory", None),
        share=getattr(args, "share", None) or (),
        gdb_port=getattr(args, "gdb", None), gdb_wait=getattr(args, "gdb_wait", False),
        trace=getattr(args, "trace", None),
        trace_format=getattr(args, "trace_format", "binary"),
        inject=getattr(args, "inject", None) or (),
        inject_file=getattr(args, "inject_file", None),
        watch_regs=getattr(args, "watch_regs", None) or (),
        break_regs=getattr(args, "break_regs", None) or (),
        corrupt_firmware=getattr(args, "corrupt_firmware", None),
        server_socket=getattr(args, "server", None))
    o.check()
    for spec in o.add:
        added_files.parse_spec(spec)     # a bad --add fails before anything is fetched
    share.parse(list(o.share))
    if o.gdb_wait and o.gdb_port is None:
        raise ValueError("--gdb-wait needs --gdb")
    if o.memory_mb is not None and o.memory_mb < 256:
        raise ValueError(f"--memory {o.memory_mb}: at least 256 MiB")
    is_built = o.kernel is not None and str(o.kernel).startswith("built")
    if not is_built and (o.kernel is None) != (o.modules is None):
        raise RuntimeError("--kernel and --modules go together")
    return o


def _guarded(command: str, start: Callable[[], BootResult]) -> BootResult | int:
    """`start()`, its failures turned into a message and an exit status for `command`."""
    try:
        return start()
    except BootError as e:
        print(f"\r\nmali-vdev {command} failed: {e}", file=sys.stderr)
        return 124 if str(e).startswith("timeout") else 1
    except KeyboardInterrupt:
        print(f"\r\nmali-vdev {command} interrupted", file=sys.stderr)
        return 130
    except (RuntimeError, KeyError, ValueError) as e:
        why = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"mali-vdev {command} failed: {why}", file=sys.stderr)
        return 1


def run_boot(args: argparse.Namespace) -> int:
    r = _guarded("boot", lambda: run(options_from_args(args), BootHooks(
        echo=lambda line: print(line, flush=True),
        show_console=_print_console if getattr(args, "show_console", False) else None)))
    if isinstance(r, int):
        return r
    for line in _watch_lines(r.server_log):
        print(f"server| {line}", file=sys.stderr)
    t = r.timings
    cache.step(f"guest command exited with status {r.status}; kernel {r.kernel_version}; "
               f"/init at {t.get('init', '?')} s, done at {t.get('cmd_exit', '?')} s, "
               f"total {t.get('total')} s"
               + (f" ({r.pauses} pause(s), {t['paused']} s paused)" if r.pauses else "")
               + (f"; trace in {r.trace}" if r.trace else "")
               + (f"; logs in {r.log_dir}" if r.log_dir else ""))
    return r.status


def run_shell(args: argparse.Namespace) -> int:
    """`mali-vdev shell`: boot with the GPU and the driver, the guest's root shell here."""
    def start() -> BootResult:
        o = options_from_args(args)
        user = "" if args.guest_cmd == DEFAULT_GUEST_CMD else args.guest_cmd + "\n"
        o.guest_cmd = shell.setup_commands(sys.stdin.fileno()) + user
        o.interactive = True
        cache.step(f"the guest's shell comes up on this terminal once Linux has booted; "
                   f"{shell.ESCAPE_NAME} quits (the guest is powered off); `exit` too")
        return run(o, BootHooks(show_console=_print_console if args.show_console else None,
                                console_watch={r"@@MALI-VDEV-CMD-START@@": _announce}))

    r = _guarded("shell", start)
    if isinstance(r, int):
        return r
    print(file=sys.stderr)
    how = f"status {r.status}" if r.status is not None else f"left with {shell.ESCAPE_NAME}"
    cache.step(f"shell ended ({how}); kernel {r.kernel_version}")
    return r.status or 0


def _announce(live: Live, line: str) -> None:
    print(f"[mali-vdev] shell ready; status: mali-vdev status --control {live.control}\r",
          file=sys.stderr, flush=True)


def _watch_lines(server_log: str) -> list[str]:
    """The server's --watch/--break hits (mali_gpu/watch.py logs them)."""
    return re.findall(r"\b((?:watch|break) #\d+: .*)", server_log)


def add_setup_arguments(parser: argparse.ArgumentParser) -> None:
    """The assets options of `boot`, to fetch/build them ahead of time."""
    _add_guest_arguments(parser)


def run_setup(args: argparse.Namespace) -> int:
    try:
        kernel, modules = resolve_kernel(getattr(args, "kernel", None),
                                         getattr(args, "modules", None))
        p = setup(kernel=kernel, modules=modules,
                  guest_packages=getattr(args, "guest_packages", None))
        # Our firmware for the default GPU, so a first boot needs nothing else.
        fw_layer.firmware_archive(fw_layer.DEFAULT, get_profile(None), p.assets)
    except (RuntimeError, ValueError) as e:
        print(f"mali-vdev setup failed: {e}", file=sys.stderr)
        return 1
    a = p.assets
    print(f"cache:      {cache.cache_root()}")
    print(f"QEMU:       {p.qemu.describe()}")
    print(f"kernel:     {a.kernel_version} ({a.kernel})")
    for name, version in a.packages.items():
        print(f"package:    {name} {version}")
    print(f"initramfs:  {p.initramfs}")
    for layer in p.layers:
        print(f"layer:      {layer}")
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
