"""`mali-vdev trace show|stats|diff|perfetto|convert`: the command-line face of mali_trace.

Exit status: 0 success (diff: identical), 1 diff found differences, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from .analysis import accesses, diff, format_diff, format_stats, format_summary, make_filter, show, stats, summarize
from .formats import FORMATS, READABLE, TraceFormatError, load, open_trace, write


def _fail(cmd: str, msg) -> int:
    print(f"mali-vdev trace {cmd}: {msg}", file=sys.stderr)
    return 2


def _warn(trace) -> None:
    for w in trace.warnings:
        print(f"warning: {trace.path}: {w}", file=sys.stderr)


def _out_path(src: str, fmt: str) -> str:
    base = src
    for ext in FORMATS.values():
        if base.endswith(ext):
            base = base[:-len(ext)]
            break
    else:
        base = os.path.splitext(base)[0]
    out = base + FORMATS[fmt]
    if os.path.abspath(out) == os.path.abspath(src):
        out = base + ".converted" + FORMATS[fmt]
    return out


def cmd_show(args) -> int:
    try:
        with open_trace(args.file) as t:
            kind = (args.kind or []) + (["JOBS"] if args.jobs else [])
            flt = make_filter(t.header, block=args.block, reg=args.reg, csg=args.csg, kind=kind or None,
                              t_from=args.t_from, t_to=args.t_to)
            if not args.quiet_header:
                print(f"# {t.path}: {t.format}, {t.header.describe()}")
            for line in show(t.events, t.header, flt, args.limit):
                print(line)
            _warn(t)
    except BrokenPipeError:
        sys.stderr.close()  # `| head`
    except (OSError, TraceFormatError, ValueError) as e:
        return _fail("show", e)
    return 0


def cmd_stats(args) -> int:
    try:
        with open_trace(args.file) as t:
            s = stats(t.events, t.header)
            _warn(t)
    except (OSError, TraceFormatError, ValueError) as e:
        return _fail("stats", e)
    if args.json:
        print(json.dumps(s, indent=2, default=str))
    else:
        print(format_stats(s, top=args.top))
    return 0


def cmd_diff(args) -> int:
    try:
        a, b = load(args.a), load(args.b)
    except (OSError, TraceFormatError, ValueError) as e:
        return _fail("diff", e)
    _warn(a)
    _warn(b)
    ax = accesses(a.events, a.header, args.ignore or (), args.strict)
    bx = accesses(b.events, b.header, args.ignore or (), args.strict)
    res = diff(ax, bx)
    if res.identical:
        return 0
    if a.header.gpu_id != b.header.gpu_id:
        print(f"# {args.a}: {a.header.describe()}\n# {args.b}: {b.header.describe()}")
    print(format_diff(res, ax, bx, args.a, args.b, context=args.context, max_hunks=args.max_hunks))
    print(format_summary(summarize(ax, bx), args.a, args.b))
    return 1


def cmd_perfetto(args) -> int:
    out = args.output or _out_path(args.file, "perfetto")
    try:
        with open_trace(args.file) as t:
            n = write(out, "perfetto", t.header, t.events, registers=args.registers, instructions=args.instructions)
            _warn(t)
    except (OSError, TraceFormatError, ValueError) as e:
        return _fail("perfetto", e)
    print(f"{out}: {n} events -> Perfetto timeline (open in https://ui.perfetto.dev)")
    return 0


def cmd_convert(args) -> int:
    out = args.output or _out_path(args.file, args.to)
    opts = {}
    if args.to == "mmiotrace":
        opts["instructions"] = args.instructions
    elif args.to == "perfetto":
        opts.update(registers=args.registers, instructions=args.instructions)
    try:
        with open_trace(args.file) as t:
            n = write(out, args.to, t.header, t.events, **opts)
            _warn(t)
    except (OSError, TraceFormatError, ValueError) as e:
        return _fail("convert", e)
    print(f"{out}: {n} events ({t.format} -> {args.to})")
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the trace subcommands to `p` (the `mali-vdev trace` parser)."""
    sub = p.add_subparsers(dest="trace_command", required=True, metavar="{show,stats,diff,perfetto,convert}")
    readable = f"a trace file ({', '.join(READABLE)}; format detected)"

    s = sub.add_parser("show", help="print events, decoded, with filters")
    s.add_argument("file", help=readable)
    s.add_argument("--block", action="append",
                   help="only events of these blocks: GPU_CONTROL (GPU), JOB_CONTROL (JOB), MMU_CONTROL, MMU_AS, "
                        "MMU (both), MCU_CONTROL (MCU), DOORBELLS (DOORBELL), USER, PWR_CONTROL, GLB, CSG, CS, "
                        "IFACE, DMA (repeat or comma-separate)")
    s.add_argument("--reg", action="append",
                   help="only these registers: GPU_ID, AS_COMMAND[1], AS_COMMAND (any AS), SHADER_PRESENT "
                        "(both halves), panthor aliases (GPU_CMD), globs (AS_*)")
    s.add_argument("--csg", type=int, help="only events of this CSG slot (interface, state, instructions, fatals)")
    s.add_argument("--kind", action="append",
                   help="only these kinds: REG_READ, REG_WRITE, IRQ_LINE, ..., or groups REG, READ, WRITE, IRQ, "
                        "MMU, CSG, CS, INSTR, FAULT, JOBS")
    s.add_argument("--from", dest="t_from", help="start time since the trace start (1.5, 1.5s, 200ms, 30us)")
    s.add_argument("--to", dest="t_to", help="end time since the trace start")
    s.add_argument("--jobs", action="store_true",
                   help="only shader-core jobs (RUN_COMPUTE, RUN_FRAGMENT), each decoded: sizes, descriptors, "
                        "the shader's first instructions (same as --kind JOBS)")
    s.add_argument("-n", "--limit", type=int, help="print at most N events")
    s.add_argument("-q", "--quiet-header", action="store_true", help="no '# file: format, GPU' line")
    s.set_defaults(func=cmd_show)

    st = sub.add_parser("stats", help="accesses per register, IRQs, doorbells, jobs, faults, resets")
    st.add_argument("file", help=readable)
    st.add_argument("--top", type=int, default=40, help="registers to list (default 40)")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.set_defaults(func=cmd_stats)

    d = sub.add_parser("diff", help="align the register accesses of two traces; exit 1 if they differ")
    d.add_argument("a")
    d.add_argument("b")
    d.add_argument("--ignore", action="append",
                   help="compare these registers without their values (names, globs; repeatable)")
    d.add_argument("--strict", action="store_true",
                   help="also compare the values of TIMESTAMP/CYCLE_COUNT reads and AS_TRANSTAB "
                        "(page-table physical addresses; ignored by default)")
    d.add_argument("-C", "--context", type=int, default=5, help="common accesses shown before the divergence")
    d.add_argument("--max-hunks", type=int, default=20, help="differing sequences to list (default 20)")
    d.set_defaults(func=cmd_diff)

    pf = sub.add_parser("perfetto", help="export a Perfetto / Chrome trace-event JSON timeline")
    pf.add_argument("file", help=readable)
    pf.add_argument("-o", "--output", help="output file (default: FILE with .perfetto.json)")
    pf.add_argument("--registers", action="store_true", help="register accesses as instants on their own track")
    pf.add_argument("--instructions", action="store_true", help="CS instructions as instants on the queue tracks")
    pf.set_defaults(func=cmd_perfetto)

    c = sub.add_parser("convert", help="convert between binary, jsonl, mmiotrace (and perfetto)")
    c.add_argument("file", help=readable)
    c.add_argument("--to", required=True, choices=list(FORMATS))
    c.add_argument("-o", "--output", help="output file (default: FILE with the format's extension)")
    c.add_argument("--instructions", action="store_true", help="mmiotrace/perfetto: include CS instructions")
    c.add_argument("--registers", action="store_true", help="perfetto: include register accesses")
    c.set_defaults(func=cmd_convert)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="mali-vdev trace", description=__doc__)
    add_arguments(p)
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
