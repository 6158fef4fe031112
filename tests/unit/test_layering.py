"""The layering the imports obey (docs/design.md, "Layers"), checked on the source.

Every import of the project's own packages counts: top-level, inside functions (lazy) and
under TYPE_CHECKING. A package may import only the packages ALLOWED lists for it, which
keeps the graph acyclic; nothing imports the CLI or the test harness.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Bottom to top. Each package may import the ones named here (and itself), nothing else.
ALLOWED: dict[str, set[str]] = {
    "vdev": set(),
    "mali_regs": set(),
    "mali_base": {"mali_regs", "vdev"},
    "firmware_loader": {"mali_regs"},
    "mcu": {"mali_base", "mali_regs", "vdev"},
    "shader": {"mali_base", "mali_regs"},
    "fragment": {"shader", "mali_base", "mali_regs"},
    "scheduler": {"shader", "fragment", "mcu", "mali_base", "mali_regs", "vdev"},
    "mali_gpu": {"scheduler", "shader", "fragment", "mcu", "mali_base", "mali_regs", "vdev"},
    "mali_trace": {"scheduler", "shader", "fragment", "mali_base", "mali_regs"},
    "qemu": {"firmware_loader", "mali_gpu", "mali_base", "mali_regs", "vdev"},
    "mali_vdev": {"qemu", "mali_trace", "mali_gpu", "shader", "mali_base", "mali_regs", "vdev"},
    "bench": {"tests", "qemu", "mali_trace", "scheduler", "shader", "fragment", "mali_gpu", "mali_base", "mali_regs",
              "vdev"},
    # the fuzz harnesses drive the device as the tests do (the driver model) and read traces
    "fuzz": {"tests", "firmware_loader", "mali_trace", "scheduler", "shader", "fragment", "mali_gpu", "mcu",
             "mali_base", "mali_regs", "vdev"},
    "tests": set(),  # the tests may import anything
}
PACKAGES = set(ALLOWED)
# Not ours: QEMU's QMP library on PyPI shares the `qemu` namespace with qemu/.
FOREIGN = ("qemu.qmp",)


def _project_imports(path: Path) -> set[str]:
    """Top-level project packages `path` imports, wherever the import statement stands."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found.update(n.split(".")[0] for n in names
                     if n.split(".")[0] in PACKAGES and not n.startswith(FOREIGN))
    return found


def _graph() -> dict[str, dict[str, set[str]]]:
    """package -> imported package -> the files that import it."""
    graph: dict[str, dict[str, set[str]]] = {p: {} for p in PACKAGES}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            for dep in _project_imports(path) - {pkg}:
                graph[pkg].setdefault(dep, set()).add(str(path.relative_to(ROOT)))
    return graph


GRAPH = _graph()


@pytest.mark.parametrize("pkg", sorted(PACKAGES - {"tests"}))
def test_package_imports_only_what_its_layer_allows(pkg):
    bad = {dep: sorted(files) for dep, files in GRAPH[pkg].items() if dep not in ALLOWED[pkg]}
    assert not bad, f"{pkg} may not import {sorted(bad)}: {bad}"


def test_the_allowed_graph_has_no_cycles():
    """Checked on ALLOWED, so a cycle cannot be permitted by accident either."""
    state: dict[str, int] = {}

    def visit(p, path):
        if state.get(p) == 1:
            raise AssertionError("cycle: " + " -> ".join(path + [p]))
        if state.get(p) == 2:
            return
        state[p] = 1
        for q in ALLOWED[p] - {"tests"} if p != "tests" else ():
            visit(q, path + [p])
        state[p] = 2

    for p in sorted(PACKAGES):
        visit(p, [])


def test_the_actual_graph_has_no_cycles():
    state: dict[str, int] = {}

    def visit(p, path):
        assert state.get(p) != 1, "import cycle: " + " -> ".join(path + [p])
        if state.get(p) == 2:
            return
        state[p] = 1
        # tests/ is the top (its unit tests import bench/ and fuzz/, which import the driver
        # model from tests/): as in ALLOWED, the edges out of it are not followed.
        for q in GRAPH[p] if p != "tests" else ():
            visit(q, path + [p])
        state[p] = 2

    for p in sorted(PACKAGES - {"tests"}):
        visit(p, [])


def test_nothing_imports_the_cli_or_the_harness():
    for pkg in PACKAGES:
        assert "mali_vdev" not in GRAPH[pkg] or pkg == "tests", f"{pkg} imports the CLI"
        assert "tests" not in GRAPH[pkg] or pkg in ("bench", "fuzz"), f"{pkg} imports the test harness"


def test_the_checker_sees_lazy_and_type_checking_imports(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from mali_gpu.device import X\n"
                   "def f():\n    import mali_vdev.cli\n    from . import sibling\n    from qemu.qmp import QMPClient\n")
    assert _project_imports(src) == {"mali_gpu", "mali_vdev"}
