"""`python -m fuzz`: run the harnesses under atheris (libFuzzer), alone or all in turn.

    python -m fuzz list
    python -m fuzz run NAME [CORPUS_DIR...] [-libfuzzer_flag=...]   # one harness, libFuzzer's own CLI
    python -m fuzz all [--time S] [--dir DIR] [NAME...]            # each (named) harness S seconds, a summary
    python -m fuzz seeds NAME DIR                                  # write the seed corpus
    python -m fuzz replay NAME FILE...                             # run inputs (a crash artifact) once

`all` keeps a corpus per harness under DIR (default $MALI_VDEV_CACHE/fuzz), seeded on first use,
so each run starts where the last stopped; crash artifacts land beside it and the run fails.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HARNESSES = ("vfio_messages", "registers", "cs_ring", "firmware_image", "trace_binary", "trace_jsonl",
             "trace_mmiotrace")
# What coverage counts: the project's packages (the harness modules and the stdlib stay out).
INSTRUMENTED = ["vdev", "mali_regs", "mali_base", "mali_gpu", "mcu", "scheduler", "firmware_loader", "mali_trace",
                "shader", "fragment"]
LIBFUZZER_FLAGS = ["-timeout=60", "-rss_limit_mb=3072", "-max_len=65536", "-print_final_stats=1"]


def _harness(name: str, instrument: bool):
    if name not in HARNESSES:
        sys.exit(f"unknown harness {name!r}; harnesses: {', '.join(HARNESSES)}")
    if instrument:
        import atheris
        with atheris.instrument_imports(include=INSTRUMENTED):
            return importlib.import_module(f"fuzz.{name}")
    return importlib.import_module(f"fuzz.{name}")


def cmd_run(name: str, args: list[str]) -> None:
    import atheris

    from .harness import quiet_logging
    mod = _harness(name, instrument=True)
    quiet_logging()
    atheris.Setup([f"fuzz-{name}", *args], mod.one_input)
    atheris.Fuzz()


def cmd_seeds(name: str, out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    seeds = _harness(name, instrument=False).seeds()
    for i, s in enumerate(seeds):
        (out / f"seed-{i:03d}").write_bytes(s)
    return len(seeds)


def cmd_replay(name: str, files: list[str]) -> int:
    from .harness import quiet_logging
    mod = _harness(name, instrument=False)
    quiet_logging()
    for f in files:
        mod.one_input(Path(f).read_bytes())
        print(f"{f}: ok")
    return 0


_STAT = re.compile(r"^stat::(\w+):\s+(\d+)", re.M)
_COV = re.compile(r"cov: (\d+) ft: (\d+)")


def cmd_all(seconds: int, base: Path, names=HARNESSES) -> int:
    """Each harness for `seconds`, one after the other; their figures go into base/summary.json
    (merged with what it holds: two `all` runs over different harnesses may share a base)."""
    summary = {}
    failed = []
    for name in names:
        corpus = base / name
        if not corpus.is_dir() or not any(corpus.iterdir()):
            cmd_seeds(name, corpus)
        artifacts = base / "artifacts"
        artifacts.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        p = subprocess.run([sys.executable, "-m", "fuzz", "run", name, str(corpus), f"-max_total_time={seconds}",
                            f"-artifact_prefix={artifacts}/{name}-", *LIBFUZZER_FLAGS],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        took = time.monotonic() - start
        (base / f"{name}.log").write_text(p.stdout)
        stats = {k: int(v) for k, v in _STAT.findall(p.stdout)}
        cov = _COV.findall(p.stdout)
        runs = stats.get("number_of_executed_units", 0)
        summary[name] = {"inputs": runs, "seconds": round(took, 1), "inputs_per_s": round(runs / took, 1) if took else 0,
                         "cov": int(cov[-1][0]) if cov else None, "features": int(cov[-1][1]) if cov else None,
                         "corpus": sum(1 for _ in corpus.iterdir()), "rss_mb": stats.get("peak_rss_mb"),
                         "exit": p.returncode}
        print(f"{name:<16} {runs:>10,} inputs  {summary[name]['inputs_per_s']:>8} /s  cov {summary[name]['cov']}  "
              f"ft {summary[name]['features']}  corpus {summary[name]['corpus']}  rss {stats.get('peak_rss_mb')} MB"
              + ("" if p.returncode == 0 else f"  FAILED (exit {p.returncode}, see {base / (name + '.log')})"),
              flush=True)
        if p.returncode != 0:
            failed.append(name)
        _merge_summary(base / "summary.json", name, summary[name])
    total = sum(s["inputs"] for s in summary.values())
    print(f"{'total':<16} {total:>10,} inputs")
    return 1 if failed else 0


def _merge_summary(path: Path, name: str, figures: dict) -> None:
    try:
        kept = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        kept = {}
    kept[name] = figures
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(kept, indent=2) + "\n")
    tmp.replace(path)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd == "list":
        print("\n".join(HARNESSES))
        return 0
    if cmd == "run" and rest:
        cmd_run(rest[0], rest[1:])
        return 0
    if cmd == "seeds" and len(rest) == 2:
        print(f"{cmd_seeds(rest[0], Path(rest[1]))} seeds in {rest[1]}")
        return 0
    if cmd == "replay" and len(rest) >= 2:
        return cmd_replay(rest[0], rest[1:])
    if cmd == "all":
        ap = argparse.ArgumentParser(prog="python -m fuzz all")
        ap.add_argument("--time", type=int, default=int(os.environ.get("FUZZ_TIME", 300)), help="seconds per harness")
        ap.add_argument("--dir", type=Path, default=Path(os.environ.get("MALI_VDEV_CACHE", Path.home() / ".cache/mali-vdev"))
                        / "fuzz")
        ap.add_argument("names", nargs="*", metavar="NAME", help=f"harnesses (default: all of {', '.join(HARNESSES)})")
        a = ap.parse_args(rest)
        unknown = [n for n in a.names if n not in HARNESSES]
        if unknown:
            ap.error(f"unknown harness {', '.join(unknown)}; harnesses: {', '.join(HARNESSES)}")
        return cmd_all(a.time, a.dir, a.names or HARNESSES)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
