"""`mali-vdev`: serve the virtual GPU, boot a guest against it, fetch what booting needs."""

from __future__ import annotations

import argparse
import logging
import signal
import sys


def _serve(args) -> int:
    from mali_base.clock import Clock
    from mali_gpu.device import MaliDevice
    from vdev.server import Server

    device = MaliDevice(args.gpu, clock=Clock(timestamp_hz=args.timestamp_hz))
    server = Server(device, args.socket)
    try:
        server.listen()
    except (FileExistsError, OSError) as e:
        logging.getLogger("mali_vdev").error("cannot listen on %s: %s", args.socket, e)
        return 1
    logging.getLogger("mali_vdev").info("serving %s (GPU_ID 0x%08x)", device.profile.name, device.profile.gpu_id)
    tracer = None
    if args.trace:
        try:
            from mali_trace import TraceWriter
            tracer = TraceWriter.for_device(device, args.trace, args.trace_format, source="mali-vdev serve")
        except (OSError, ImportError) as e:
            logging.getLogger("mali_vdev").error("cannot write the trace %s: %s", args.trace, e)
            server.close()
            return 1
        logging.getLogger("mali_vdev").info("tracing every event to %s (%s)", args.trace, args.trace_format)
    try:
        _arm_debugging(device, args)
    except (ValueError, OSError) as e:
        logging.getLogger("mali_vdev").error("%s", e)
        server.close()
        if tracer is not None:
            tracer.close()
        return 2
    from mali_gpu.control import ControlServer
    control = ControlServer(device, args.control or args.socket + ".ctl", server_timing=server.timing)
    control.start()

    def stop(signum, frame):
        server.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever()
    finally:
        control.close()
        server.close()
        device.engine.stop()
        if tracer is not None:
            tracer.close()  # the buffered tail and the format's trailer, also on SIGTERM
    return 0


def _arm_debugging(device, args) -> None:
    """Fault injections, watches and breaks given on the command line."""
    from mali_base.faults import load_file, parse_spec
    from mali_gpu.watch import Qmp, Watcher, parse_watch
    for spec in args.inject or ():
        device.inject(parse_spec(spec))
    if args.inject_file:
        for inj in load_file(args.inject_file):
            device.inject(inj)
    if args.qmp:
        device.qmp = Qmp(args.qmp)
    if args.watch or args.break_on:
        watcher = Watcher(device.regmap, device.qmp)
        for spec in args.watch or ():
            watcher.add(parse_watch(spec, device.regmap, pause=False))
        for spec in args.break_on or ():
            watcher.add(parse_watch(spec, device.regmap, pause=True))
        device.events.attach(watcher)


def _ask(args, cmd: str, render=None) -> int:
    """One control-socket request; print the answer (rendered, or as JSON)."""
    import json

    from mali_gpu.control import request
    try:
        answer = request(args.control, {"cmd": cmd})
    except OSError as e:
        print(f"mali-vdev {args.command}: cannot reach {args.control}: {e}", file=sys.stderr)
        return 1
    failed = "error" in answer
    print(render(answer) if render and not failed and not getattr(args, "json", False)
          else json.dumps(answer, indent=2))
    return 1 if failed else 0


def _continue(args) -> int:
    return _ask(args, "continue")


def _status(args) -> int:
    from mali_gpu.control import format_status
    return _ask(args, "status", format_status)


def _boot(args) -> int:
    from qemu.boot import run_boot
    return run_boot(args)


def _shell(args) -> int:
    from qemu.boot import run_shell
    return run_shell(args)


def _setup(args) -> int:
    from qemu.boot import run_setup
    return run_setup(args)


def _kernel(args) -> int:
    from qemu.kernel_build import run
    return run(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mali-vdev", description=__doc__)
    p.add_argument("--log-level", default="INFO", help="DEBUG shows every register access (default INFO)")
    p.add_argument("--log-file", help="write the log here instead of stderr")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="serve the virtual GPU on a vfio-user socket")
    s.add_argument("--socket", required=True, help="unix socket path QEMU's vfio-user-pci connects to")
    s.add_argument("--gpu", default="g610", help="GPU profile (default g610)")
    s.add_argument("--timestamp-hz", type=int, default=62_500_000,
                   help="GPU TIMESTAMP frequency; must equal the guest's CNTFRQ (QEMU: 62.5 MHz for "
                        "cortex-a72, 1 GHz for -cpu max)")
    s.add_argument("--control", help="control socket for `mali-vdev status` (default: SOCKET.ctl)")
    s.add_argument("--trace", metavar="FILE", help="record every event (register accesses, IRQs, doorbells, "
                                                   "interface acks, MMU, CSG/CS state, CS instructions, ...) to FILE")
    s.add_argument("--trace-format", choices=("binary", "jsonl", "mmiotrace", "perfetto"), default="binary",
                   help="format of --trace (default binary; read it with `mali-vdev trace`)")
    s.set_defaults(func=_serve)

    s.add_argument("--inject", action="append", metavar="SPEC",
                   help="arm a fault injection, e.g. drop_ping_ack:skip=1 (see mali_base/faults.py); repeatable")
    s.add_argument("--inject-file", metavar="FILE", help="TOML file with [[inject]] tables")
    s.add_argument("--watch", action="append", metavar="REG[:r|w][=VALUE]",
                   help="log every matching register access, decoded; repeatable")
    s.add_argument("--break", dest="break_on", action="append", metavar="REG[:r|w][=VALUE]",
                   help="pause the guest through QMP on a matching access; repeatable (needs --qmp)")
    s.add_argument("--qmp", metavar="PATH", help="QEMU's QMP unix socket, for --break and `mali-vdev continue`")

    c = sub.add_parser("continue", help="resume a guest paused by a --break (QMP cont)")
    c.add_argument("--control", required=True, help="the server's control socket (SOCKET.ctl)")
    c.set_defaults(func=_continue)

    st = sub.add_parser("status", help="show the state of a running server (power, MCU, AS, CSG slots)")
    st.add_argument("--control", required=True, help="the server's control socket (SOCKET.ctl)")
    st.add_argument("--json", action="store_true", help="the raw JSON answer")
    st.set_defaults(func=_status)

    for name, func, text in (
            ("boot", _boot, "boot the Debian arm64 guest with the GPU attached and run a command"),
            ("shell", _shell, "boot the guest with the GPU and its driver and give its root shell to "
                              "this terminal (Ctrl-] quits)")):
        b = sub.add_parser(name, help=text)
        try:
            from qemu.boot import add_boot_arguments
            add_boot_arguments(b)
        except ImportError as e:  # keep `serve` usable if the guest side is broken
            b.set_defaults(import_error=str(e))
        b.set_defaults(func=func)

    t = sub.add_parser("trace", help="decode, summarise, compare and convert traces: show, stats, diff, perfetto, "
                                     "convert")
    try:
        from mali_trace.cli import add_arguments as add_trace_arguments
        add_trace_arguments(t)
    except ImportError as e:
        t.add_argument("rest", nargs=argparse.REMAINDER)
        t.set_defaults(import_error=str(e), func=None)

    k = sub.add_parser("kernel", help="build guest kernels with panthor and Tyr (kernel build), "
                                      "list them (kernel list)")
    try:
        from qemu.kernel_build import add_arguments as add_kernel_arguments
        add_kernel_arguments(k)
    except ImportError as e:
        k.set_defaults(import_error=str(e))
    k.set_defaults(func=_kernel)

    u = sub.add_parser("setup", help="fetch and build QEMU and the guest assets (cached)")
    try:
        from qemu.boot import add_setup_arguments
        add_setup_arguments(u)
    except ImportError as e:
        u.set_defaults(import_error=str(e))
    u.set_defaults(func=_setup)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        filename=args.log_file,
        format="%(asctime)s.%(msecs)03d %(name)s %(levelname)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if getattr(args, "import_error", None):
        print(f"mali-vdev {args.command}: unavailable: {args.import_error}", file=sys.stderr)
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
