"""The fuzz harnesses (fuzz/, `make fuzz`) in `make test`: each runs its fixed seed corpus
(built through the real encoders, plus deterministic mutants) with its invariants, the
invariant checks themselves can fail, and one short coverage-guided run goes through atheris
as `make fuzz` does. Findings of the long runs are regression tests in test_fuzz_findings.py."""

from __future__ import annotations

import importlib
import logging
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest

atheris = pytest.importorskip(
    "atheris", reason="atheris (a test dependency, x86-64 wheels only) is not installed for this platform: "
    f"{platform.machine()}, Python {platform.python_version()}")

from fuzz.__main__ import HARNESSES  # noqa: E402
from fuzz.harness import Finding, mutations, watched  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", HARNESSES)
def test_harness_holds_its_invariants_on_the_seed_corpus(name):
    mod = importlib.import_module(f"fuzz.{name}")
    corpus = mod.seeds()
    assert len(corpus) >= 30 and len(set(corpus)) > len(corpus) // 2, "a seed corpus of distinct inputs"
    assert corpus == mod.seeds(), "the seed corpus is deterministic"
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)
    try:
        for i, data in enumerate(corpus):
            try:
                mod.one_input(data)
            except Finding as e:
                pytest.fail(f"{name} seed {i} ({data[:32].hex()}...): {e}")
    finally:
        root.setLevel(level)


def test_the_watch_reports_internal_errors_and_fd_leaks():
    log = logging.getLogger("test.fuzz.watch")

    @watched
    def internal_error(data):
        try:
            raise KeyError("bug")
        except KeyError:
            log.exception("internal error handling X")

    with pytest.raises(Finding, match="internal error handling X"):
        internal_error(b"")

    leaked = []

    @watched
    def leak(data):
        leaked.append(os.eventfd(0))

    with pytest.raises(Finding, match="1 file descriptors left open"):
        leak(b"")
    os.close(leaked[0])

    @watched
    def fine(data):
        log.warning("driver misuse: read of write-only X")   # a hardware answer, not a bug

    fine(b"")


def test_mutations_are_deterministic_and_bounded():
    base = [bytes(range(200)), b"MALITRC\0" + bytes(100)]
    a, b = mutations(base, 50, seed=9), mutations(base, 50, seed=9)
    assert a == b and a != mutations(base, 50, seed=10)
    assert sum(m not in base for m in a) > 40


def test_a_short_coverage_guided_run_through_atheris(tmp_path):
    """What `make fuzz` runs, briefly: libFuzzer drives a harness from its seeds, finds new
    coverage, and exits 0 (no finding)."""
    corpus = tmp_path / "corpus"
    subprocess.run([sys.executable, "-m", "fuzz", "seeds", "trace_mmiotrace", str(corpus)], cwd=ROOT, check=True,
                   capture_output=True)
    seeded = len(list(corpus.iterdir()))
    p = subprocess.run([sys.executable, "-m", "fuzz", "run", "trace_mmiotrace", str(corpus), "-runs=400", "-seed=1",
                        f"-artifact_prefix={tmp_path}/", "-print_final_stats=1"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    runs = re.search(r"stat::number_of_executed_units: (\d+)", p.stderr)
    assert runs and int(runs.group(1)) >= 400, p.stderr[-2000:]
    assert "cov: " in p.stderr and len(list(corpus.iterdir())) > seeded, "coverage feedback added inputs"
