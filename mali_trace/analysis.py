"""Reading traces: filters (`show`), statistics (`stats`) and alignment of two traces (`diff`)."""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from mali_base.events import Event, Kind

from .decode import SHORT, Decoder, parse_kinds
from .header import TraceHeader
from .jobs import JobTracker

# -- filters ---------------------------------------------------------------------------------

BLOCK_ALIASES = {
    "GPU": {"GPU_CONTROL"}, "GPU_CONTROL": {"GPU_CONTROL"},
    "JOB": {"JOB_CONTROL"}, "JOB_CONTROL": {"JOB_CONTROL"},
    "MMU": {"MMU_CONTROL", "MMU_AS"}, "MMU_CONTROL": {"MMU_CONTROL"}, "MMU_AS": {"MMU_AS"}, "AS": {"MMU_AS"},
    "MCU": {"MCU_CONTROL"}, "MCU_CONTROL": {"MCU_CONTROL"},
    "DOORBELL": {"DOORBELLS"}, "DOORBELLS": {"DOORBELLS"},
    "PWR": {"PWR_CONTROL"}, "PWR_CONTROL": {"PWR_CONTROL"},
    "USER": {"USER"},
    "GLB": {"GLB"}, "CSG": {"CSG"}, "CS": {"CS"},
    "IFACE": {"GLB", "CSG", "CS"}, "FW": {"GLB", "CSG", "CS", "MCU_CONTROL"},
    "DMA": {"DMA"},
}

_CSG_KINDS = (Kind.IFACE, Kind.CSG_STATE, Kind.CS_STATE, Kind.CS_INSTR, Kind.CS_FATAL, Kind.JOB, Kind.JOB_DATA)
# Values that differ from run to run without the driver behaving differently: the free-running
# counters, and AS_TRANSTAB (the physical address where the kernel's allocator put a VM's
# page tables; the VM layout itself is in the AS commands and LOCKADDR regions).
_VOLATILE = ("TIMESTAMP*", "CYCLE_COUNT*", "AS_TRANSTAB*")


def parse_time(s: str | None) -> int | None:
    """'1.5' / '1.5s' / '200ms' / '30us' / '100ns' -> nanoseconds."""
    if s is None:
        return None
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(s|ms|us|µs|ns)?\s*", s)
    if not m:
        raise ValueError(f"bad time {s!r} (use e.g. 1.5, 200ms, 30us, 100ns)")
    scale = {"s": 1e9, None: 1e9, "ms": 1e6, "us": 1e3, "µs": 1e3, "ns": 1}[m.group(2)]
    return int(float(m.group(1)) * scale)


def parse_blocks(names) -> set[str]:
    out: set[str] = set()
    for item in names:
        for n in str(item).replace(",", " ").split():
            u = n.upper()
            if u not in BLOCK_ALIASES:
                raise ValueError(f"unknown block {n!r}; blocks: {', '.join(sorted(BLOCK_ALIASES))}")
            out |= BLOCK_ALIASES[u]
    return out


class RegMatcher:
    """`--reg` patterns: exact display names (GPU_ID, AS_COMMAND[1], SHADER_PRESENT_LO),
    base names matching every index and half (AS_COMMAND, SHADER_PRESENT), panthor aliases
    (GPU_CMD, GPU_INT_RAWSTAT) and globs (AS_*)."""

    def __init__(self, patterns: Iterable[str], header: TraceHeader):
        regmap = header.regmap()
        self.exact: set[str] = set()
        self.globs: list[str] = []
        for p in patterns:
            for n in str(p).replace(",", " ").split():
                n = n.upper()
                if re.fullmatch(r"[A-Z0-9_]+(\[\d+\])?", n):
                    base = re.sub(r"\[\d+\]$", "", n)
                    if n in regmap:
                        n = regmap[n].full_name
                    elif base in regmap:
                        n = regmap[base].full_name
                    self.exact.add(n)
                else:  # an index in a glob is literal: AS_*[1]
                    self.globs.append(re.sub(r"\[(\d+)\]", r"[[]\1[]]", n))

    @staticmethod
    def names(reg: str) -> set[str]:
        no_idx = re.sub(r"\[\d+\]$", "", reg)
        out = {reg, no_idx}
        for n in (reg, no_idx):
            m = re.fullmatch(r"(.*)_(LO|HI)(\[\d+\])?", n)
            if m:
                out.add(m.group(1) + (m.group(3) or ""))
                out.add(m.group(1))
        return out

    def match(self, reg: str | None) -> bool:
        if reg is None:
            return False
        cands = self.names(reg)
        if not cands.isdisjoint(self.exact):
            return True
        return any(fnmatch.fnmatchcase(c, p) for p in self.globs for c in cands)


@dataclass
class Filter:
    blocks: set[str] | None = None
    regs: RegMatcher | None = None
    csg: int | None = None
    kinds: set[Kind] | None = None
    t_from: int | None = None
    t_to: int | None = None

    def __call__(self, ev: Event, decoded: dict) -> bool:
        if self.t_from is not None and ev.t_ns < self.t_from:
            return False
        if self.t_to is not None and ev.t_ns > self.t_to:
            return False
        if self.kinds is not None and ev.kind not in self.kinds:
            return False
        if self.blocks is not None and decoded["block"] not in self.blocks:
            return False
        if self.regs is not None and not self.regs.match(decoded.get("reg")):
            return False
        if self.csg is not None and not (ev.kind in _CSG_KINDS and ev.slot == self.csg):
            return False   # (GLB interface events have no slot)
        return True


def make_filter(header: TraceHeader, block=None, reg=None, csg=None, kind=None, t_from=None, t_to=None) -> Filter:
    return Filter(blocks=parse_blocks(block) if block else None,
                  regs=RegMatcher(reg, header) if reg else None,
                  csg=csg,
                  kinds=parse_kinds(kind) if kind else None,
                  t_from=parse_time(t_from) if isinstance(t_from, str) else t_from,
                  t_to=parse_time(t_to) if isinstance(t_to, str) else t_to)


def format_event(ev: Event, decoded: dict) -> str:
    t = ev.t_ns / 1e9
    return f"{ev.seq:>9} {t:13.6f}  {SHORT.get(ev.kind, ev.kind.name):<9} {decoded['block']:<12} {decoded['text']}"


def show(events: Iterable[Event], header: TraceHeader, flt: Filter | None = None,
         limit: int | None = None) -> Iterator[str]:
    dec = Decoder(header)
    n = 0
    for ev in events:
        d = dec.decode(ev)   # every event, so interface/IRQ state stays right
        if ev.kind == Kind.JOB_DATA and (flt is None or flt.kinds is None or Kind.JOB_DATA not in flt.kinds):
            continue         # raw job memory: shown decoded under its JOB event, or when asked for
        if flt is None or flt(ev, d):
            yield format_event(ev, d)
            for line in d.get("lines", ())[1:]:
                yield f"{'':>34}{line}"
            n += 1
            if limit is not None and n >= limit:
                return


# -- stats -----------------------------------------------------------------------------------

def stats(events: Iterable[Event], header: TraceHeader) -> dict:
    """Counts: events per kind, accesses per register, IRQs, doorbells, jobs, faults, resets..."""
    dec = Decoder(header)
    tracker = JobTracker()
    kinds: Counter = Counter()
    regs: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    irq_bits: dict[str, Counter] = defaultdict(Counter)
    irq_line = 0
    doorbells: Counter = Counter()
    mmu_cmds: Counter = Counter()
    gpu_cmds: Counter = Counter()
    resets: Counter = Counter()
    mmu_faults: list = []
    cs_fatals: list = []
    opcodes: Counter = Counter()
    csg_states: Counter = Counter()
    iface: Counter = Counter()
    jobs = []
    first = last = None
    for ev in events:
        if first is None:
            first = ev
        last = ev
        k = ev.kind
        kinds[k.name] += 1
        d = dec.decode(ev)
        if k in (Kind.REG_READ, Kind.REG_WRITE):
            regs[d["reg"]][0 if k == Kind.REG_READ else 1] += 1
        elif k == Kind.IRQ_LINE:
            irq_line += bool(ev.value)
        elif k == Kind.IRQ_RAWSTAT:
            for b in d.get("raised", ()):
                irq_bits[d["irq"]][b] += 1
        elif k == Kind.DOORBELL:
            doorbells[d["reg"]] += 1
        elif k == Kind.MMU_COMMAND:
            mmu_cmds[d["command"]] += 1
        elif k == Kind.GPU_COMMAND:
            gpu_cmds[str(d["fields"].get("COMMAND"))] += 1
        elif k == Kind.RESET:
            resets[d["reset"]] += 1
        elif k == Kind.MMU_FAULT:
            mmu_faults.append({"seq": ev.seq, "t_ns": ev.t_ns, "as": ev.slot, "va": ev.addr,
                               "exception": d["exception"], "access": d["access"]})
        elif k == Kind.CS_FATAL:
            cs_fatals.append({"seq": ev.seq, "t_ns": ev.t_ns, "csg": ev.slot, "cs": ev.stream,
                              "exception": d["exception"], "info": ev.aux})
        elif k == Kind.CS_INSTR:
            opcodes[d["disasm"].split(None, 1)[0].split(".")[0]] += 1
        elif k == Kind.CSG_STATE:
            csg_states[d["state"]] += 1
        elif k == Kind.IFACE:
            for c in d.get("changed", ()):
                iface[f"{d.get('iface')} {c}"] += 1
        for what, obj in tracker.feed(ev):
            if what == "job_end":
                jobs.append(obj)
    for what, obj in tracker.finish(last):
        if what == "job_end":
            jobs.append(obj)
    per_queue: dict[str, dict] = {}
    for j in jobs:
        q = per_queue.setdefault(f"CSG{j.slot}/CS{j.stream}", {"jobs": 0, "total_ns": 0, "max_ns": 0,
                                                              "instructions": 0, "ended_by": Counter()})
        q["jobs"] += 1
        q["total_ns"] += j.duration_ns
        q["max_ns"] = max(q["max_ns"], j.duration_ns)
        q["instructions"] += j.instructions
        q["ended_by"][j.ended_by] += 1
    for q in per_queue.values():
        q["mean_ns"] = q["total_ns"] // q["jobs"] if q["jobs"] else 0
        q["ended_by"] = dict(q["ended_by"])
    return {
        "header": header.to_dict(),
        "events": sum(kinds.values()),
        "first_seq": first.seq if first else None,
        "last_seq": last.seq if last else None,
        "duration_ns": (last.t_ns - first.t_ns) if first else 0,
        "kinds": dict(kinds.most_common()),
        "registers": {n: {"reads": r, "writes": w} for n, (r, w) in
                      sorted(regs.items(), key=lambda kv: -(kv[1][0] + kv[1][1]))},
        "irq": {"line_raised": irq_line, "raised_bits": {b: dict(c.most_common()) for b, c in irq_bits.items()}},
        "doorbells": dict(doorbells.most_common()),
        "jobs": {"total": len(jobs), "per_queue": per_queue},
        "cs_instructions": dict(opcodes.most_common()),
        "csg_states": dict(csg_states),
        "iface": dict(iface.most_common()),
        "mmu_commands": dict(mmu_cmds.most_common()),
        "gpu_commands": dict(gpu_cmds.most_common()),
        "faults": {"mmu": mmu_faults, "cs_fatal": cs_fatals,
                   "gpu": irq_bits.get("GPU", {}).get("FAULT", 0)},
        "resets": dict(resets),
    }


def format_stats(s: dict, top: int = 40) -> str:
    h = TraceHeader.from_dict(s["header"])
    out = [f"GPU: {h.describe()}",
           f"events: {s['events']} (seq {s['first_seq']}..{s['last_seq']}), {s['duration_ns'] / 1e9:.6f} s"]
    out.append("by kind: " + ", ".join(f"{k} {n}" for k, n in s["kinds"].items()))
    regs = s["registers"]
    out.append(f"register accesses: {sum(r['reads'] + r['writes'] for r in regs.values())} "
               f"to {len(regs)} registers")
    out.append(f"  {'register':<28} {'reads':>8} {'writes':>8}")
    for n, r in list(regs.items())[:top]:
        out.append(f"  {n:<28} {r['reads']:>8} {r['writes']:>8}")
    if len(regs) > top:
        out.append(f"  ... {len(regs) - top} more (--top N)")
    irq = s["irq"]
    out.append(f"IRQ line raised: {irq['line_raised']}")
    for blk, bits in irq["raised_bits"].items():
        out.append(f"  {blk}_IRQ bits raised: " + ", ".join(f"{b} {n}" for b, n in bits.items()))
    if s["doorbells"]:
        out.append("doorbells: " + ", ".join(f"{n} {c}" for n, c in s["doorbells"].items()))
    jobs = s["jobs"]
    out.append(f"jobs: {jobs['total']}")
    for q, j in jobs["per_queue"].items():
        ended = ", ".join(f"{k} {v}" for k, v in j["ended_by"].items())
        out.append(f"  {q}: {j['jobs']} jobs, mean {j['mean_ns'] / 1000:.1f} us, max {j['max_ns'] / 1000:.1f} us, "
                   f"{j['instructions']} instructions; ended by {ended}")
    if s["cs_instructions"]:
        out.append("CS instructions: " + ", ".join(f"{k} {v}" for k, v in s["cs_instructions"].items()))
    if s["csg_states"]:
        out.append("CSG state changes: " + ", ".join(f"{k} {v}" for k, v in s["csg_states"].items()))
    if s["mmu_commands"]:
        out.append("MMU commands: " + ", ".join(f"{k} {v}" for k, v in s["mmu_commands"].items()))
    if s["gpu_commands"]:
        out.append("GPU commands: " + ", ".join(f"{k} {v}" for k, v in s["gpu_commands"].items()))
    f = s["faults"]
    out.append(f"faults: {len(f['mmu'])} MMU, {len(f['cs_fatal'])} CS fatal, {f['gpu']} GPU (GPU_IRQ FAULT)")
    for m in f["mmu"][:top]:
        out.append(f"  seq {m['seq']}: AS{m['as']} VA 0x{m['va']:x} {m['exception']} ({m['access']})")
    for c in f["cs_fatal"][:top]:
        out.append(f"  seq {c['seq']}: CSG{c['csg']} CS{c['cs']} {c['exception']} info 0x{c['info']:x}")
    out.append("resets: " + (", ".join(f"{k} {v}" for k, v in s["resets"].items()) or "none"))
    return "\n".join(out)


# -- diff ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Access:
    seq: int
    t_ns: int
    write: bool
    offset: int
    width: int
    value: int
    reg: str
    key: tuple
    text: str = ""      # the decoded write ("GPU_COMMAND = SOFT_RESET ..."); "" for reads

    def line(self) -> str:
        if self.text:   # a write with its decoded fields (a command says what it does)
            return f"W {self.text}"
        return f"{'W' if self.write else 'R'} {self.reg} = 0x{self.value:0{self.width * 2}x}"


def accesses(events: Iterable[Event], header: TraceHeader, ignore_values: Iterable[str] = (),
             strict: bool = False) -> list[Access]:
    """The register accesses of a trace, keyed by (direction, offset, width, value); the
    value is left out of the key for registers matching `ignore_values` (and, unless
    `strict`, for the free-running TIMESTAMP/CYCLE_COUNT registers and AS_TRANSTAB)."""
    dec = Decoder(header)
    patterns = list(ignore_values) + ([] if strict else list(_VOLATILE))
    matcher = RegMatcher(patterns, header) if patterns else None
    masked: dict[str, bool] = {}
    out = []
    for ev in events:
        if ev.kind != Kind.REG_READ and ev.kind != Kind.REG_WRITE:
            continue
        _, name, _, _ = dec.register(ev.addr, ev.width)
        m = masked.get(name)
        if m is None:
            m = masked[name] = bool(matcher and matcher.match(name))
        w = ev.kind == Kind.REG_WRITE
        text = ""
        if w and not m:
            text = dec.regmap.decode(ev.addr, ev.value, ev.width * 8 if ev.width in (4, 8) else 32)
        out.append(Access(ev.seq, ev.t_ns, w, ev.addr, ev.width, ev.value, name,
                          (w, ev.addr, ev.width, None if m else ev.value), text))
    return out


def _action(x: Access) -> str:
    """What an access does, for the summary: reads by register, writes by decoded value
    (a command or a mask is what a driver does), volatile values left out."""
    if not x.write:
        return f"R {x.reg}"
    return f"W {x.text}" if x.text else f"W {x.reg}"


@dataclass
class Summary:
    only_a: Counter                      # actions of A that B never does (with counts)
    only_b: Counter
    both: list                           # (action, count in A, count in B) done differently often


def summarize(a: list[Access], b: list[Access]) -> Summary:
    """What each trace does that the other does not (the question of a driver port: what
    does the C driver do that the new one doesn't yet), whatever the order."""
    ca, cb = Counter(map(_action, a)), Counter(map(_action, b))
    both = sorted(((k, ca[k], cb[k]) for k in ca.keys() & cb.keys() if ca[k] != cb[k]),
                  key=lambda t: -abs(t[1] - t[2]))
    return Summary(Counter({k: n for k, n in ca.items() if k not in cb}),
                   Counter({k: n for k, n in cb.items() if k not in ca}), both)


def format_summary(s: Summary, name_a: str = "A", name_b: str = "B", top: int = 25) -> str:
    out = []
    for name, only, other in ((name_a, s.only_a, name_b), (name_b, s.only_b, name_a)):
        out.append(f"only in {name} ({len(only)} kinds of access {other} never makes):")
        for k, n in sorted(only.items(), key=lambda t: (-t[1], t[0]))[:top]:
            out.append(f"  {n:6d}x {k}")
        if len(only) > top:
            out.append(f"  ... {len(only) - top} more")
    if s.both:
        out.append(f"in both, differently often ({name_a} / {name_b}):")
        for k, na, nb in s.both[:top]:
            out.append(f"  {na:6d} / {nb:<6d} {k}")
    return "\n".join(out)


@dataclass
class DiffResult:
    a_count: int
    b_count: int
    first: int | None                   # index of the first differing access (None: identical)
    opcodes: list = field(default_factory=list)   # difflib opcodes (non-equal only)
    regs: Counter = field(default_factory=Counter)

    @property
    def identical(self) -> bool:
        return self.first is None


def diff(a: list[Access], b: list[Access]) -> DiffResult:
    n = min(len(a), len(b))
    first = next((i for i in range(n) if a[i].key != b[i].key), None)
    if first is None and len(a) != len(b):
        first = n
    res = DiffResult(len(a), len(b), first)
    if first is None:
        return res
    # align the rest (the common prefix is known); keys are interned to small ints for speed
    ids: dict = {}
    ka = [ids.setdefault(x.key, len(ids)) for x in a[first:]]
    kb = [ids.setdefault(x.key, len(ids)) for x in b[first:]]
    sm = difflib.SequenceMatcher(None, ka, kb, autojunk=len(ka) + len(kb) > 40000)
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            continue
        res.opcodes.append((tag, i1 + first, i2 + first, j1 + first, j2 + first))
        for x in a[i1 + first:i2 + first]:
            res.regs[x.reg] += 1
        for x in b[j1 + first:j2 + first]:
            res.regs[x.reg] += 1
    return res


def format_diff(res: DiffResult, a: list[Access], b: list[Access], name_a: str = "A", name_b: str = "B",
                context: int = 5, max_hunks: int = 20, max_lines: int = 6) -> str:
    if res.identical:
        return ""
    out = [f"--- {name_a} ({res.a_count} register accesses)", f"+++ {name_b} ({res.b_count} register accesses)"]
    # hunks are numbered like unified diffs: -first,count in A  +first,count in B (access numbers from 1)
    i = res.first
    fa = a[i] if i < len(a) else None
    fb = b[i] if i < len(b) else None
    where = " / ".join(f"{n} seq {x.seq} t={x.t_ns / 1e9:.6f}s" for n, x in ((name_a, fa), (name_b, fb)) if x)
    out.append(f"first divergence at register access #{i + 1} ({where}):")
    for x in a[max(0, i - context):i]:
        out.append(f"    {x.line()}")
    for x in a[i:i + 3]:
        out.append(f"  - {x.line()}")
    if fa is None:
        out.append(f"  - (end of {name_a})")
    for x in b[i:i + 3]:
        out.append(f"  + {x.line()}")
    if fb is None:
        out.append(f"  + (end of {name_b})")
    out.append(f"differing register sequences: {len(res.opcodes)} hunks "
               f"({sum(i2 - i1 for _, i1, i2, _, _ in res.opcodes)} accesses of {name_a}, "
               f"{sum(j2 - j1 for _, _, _, j1, j2 in res.opcodes)} of {name_b})")
    for tag, i1, i2, j1, j2 in res.opcodes[:max_hunks]:
        out.append(f"@@ -{i1 + 1},{i2 - i1} +{j1 + 1},{j2 - j1} @@ {tag}")
        for x in a[i1:min(i2, i1 + max_lines)]:
            out.append(f"  - {x.line()}")
        if i2 - i1 > max_lines:
            out.append(f"  - ... {i2 - i1 - max_lines} more")
        for x in b[j1:min(j2, j1 + max_lines)]:
            out.append(f"  + {x.line()}")
        if j2 - j1 > max_lines:
            out.append(f"  + ... {j2 - j1 - max_lines} more")
    if len(res.opcodes) > max_hunks:
        out.append(f"... {len(res.opcodes) - max_hunks} more hunks (--max-hunks N)")
    out.append("registers in differing sequences: " + ", ".join(f"{r} {n}" for r, n in res.regs.most_common(20)))
    return "\n".join(out)


__all__ = ["Filter", "make_filter", "show", "stats", "format_stats", "accesses", "diff", "format_diff",
           "summarize", "format_summary", "Summary",
           "parse_time", "parse_blocks", "RegMatcher"]
