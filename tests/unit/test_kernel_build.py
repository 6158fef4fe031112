"""`mali-vdev kernel build` without building: source trees, the configuration checks, the
cache of built kernels and `--kernel built[:VERSION]` (the builds themselves run in
tests/integration/test_tyr.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qemu import boot
from qemu import kernel_build as kb
from tests.unit.test_qemu_kmodules import fake_module


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MALI_VDEV_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def tree(root: Path, version="7", patch="3", sub="0", extra="-rc7") -> Path:
    root.mkdir(parents=True)
    (root / "Makefile").write_text(
        f"# SPDX-License-Identifier: GPL-2.0\nVERSION = {version}\nPATCHLEVEL = {patch}\n"
        f"SUBLEVEL = {sub}\nEXTRAVERSION ={' ' + extra if extra else ''}\nNAME = Baby Opossum Posse\n")
    (root / "drivers/gpu/drm/tyr").mkdir(parents=True)
    return root


def test_makefile_version_with_and_without_extraversion(tmp_path):
    assert kb.makefile_version(tree(tmp_path / "a")) == ("7.3", "7.3.0-rc7")
    # an empty EXTRAVERSION is empty, not the next line's NAME
    assert kb.makefile_version(tree(tmp_path / "b", patch="2", sub="13", extra="")) == \
        ("7.2", "7.2.13")


def test_user_source_refuses_what_kbuild_would(tmp_path):
    with pytest.raises(kb.KernelBuildError, match=r"step 'source'.*no such directory"):
        kb.user_source(tmp_path / "missing")
    (tmp_path / "notlinux").mkdir()
    (tmp_path / "notlinux/Makefile").write_text("all:\n\ttrue\n")
    with pytest.raises(kb.KernelBuildError, match="not a Linux source tree"):
        kb.user_source(tmp_path / "notlinux")
    t = tree(tmp_path / "configured")
    (t / ".config").write_text("CONFIG_X=y\n")
    with pytest.raises(kb.KernelBuildError, match="make mrproper"):
        kb.user_source(t)
    src = kb.user_source(tree(tmp_path / "clean"))
    assert src.version == "7.3" and not src.debian and src.label == str(tmp_path / "clean")


def test_check_config_names_missing_and_dropped_options():
    good = "\n".join(f"{k}={v}" for k, v in kb.REQUIRED.items())
    assert kb.check_config(good, []) == []
    bad = good.replace("CONFIG_DRM=y", "CONFIG_DRM=m").replace("CONFIG_DRM_TYR=m\n", "")
    problems = kb.check_config(bad + "\n# CONFIG_NVMEM is not set\n", [])
    assert "CONFIG_DRM=m (needs y)" in problems
    assert "CONFIG_DRM_TYR=n (needs m)" in problems
    # an option of a fragment that olddefconfig dropped (its dependency is unmet)
    assert kb.check_config(good, ["CONFIG_DEVMEM=y\n"]) == ["CONFIG_DEVMEM=n (the fragment asks y)"]
    assert kb.check_config(good + "\nCONFIG_DEVMEM=y", ["CONFIG_DEVMEM=y\n"]) == []


def test_project_fragment_asks_for_what_the_guest_needs():
    asked = kb.parse_config(kb.FRAGMENT.read_text())
    for k, v in kb.REQUIRED.items():
        assert asked.get(k) == v, k
    assert asked["CONFIG_MODVERSIONS"] == "n"   # RUST needs !MODVERSIONS (or gendwarfksyms)


def test_config_digest_follows_the_user_fragment(tmp_path):
    f = tmp_path / "extra.config"
    f.write_text("CONFIG_DEVMEM=y\n")
    parts, d1 = kb.config_inputs([f])
    assert [n for n, _ in parts] == ["mali-vdev.config", "user-1-extra.config"]
    f.write_text("CONFIG_DEVMEM=n\n")
    assert kb.config_inputs([f])[1] != d1
    with pytest.raises(kb.KernelBuildError, match="step 'config'.*--config-fragment"):
        kb.config_inputs([tmp_path / "nope.config"])


def fake_built(cache_dir: Path, name: str, version: str, source: str, built_at: str) -> kb.BuiltKernel:
    k = kb.BuiltKernel(name=name, version=version, release=f"{version}.0-mali-vdev",
                       source=source, config_digest="c0ffee", kernelversion=f"{version}.0",
                       built_at=built_at, build_seconds=600.0)
    k.modules.mkdir(parents=True)
    (k.modules / "tyr.ko").write_bytes(fake_module("tyr", "", f"{k.release} SMP aarch64"))
    (k.modules / "panthor.ko").write_bytes(fake_module("panthor", "", f"{k.release} SMP aarch64"))
    k.image.write_bytes(b"Image")
    (k.dir / "build.json").write_text(json.dumps(k.__dict__))
    return k


def test_find_built_by_version_and_name(cache_dir):
    with pytest.raises(RuntimeError, match=r"no built kernel.*mali-vdev kernel build --version 7\.3"):
        kb.find_built("built:7.3")
    a = fake_built(cache_dir, "7.2.13-aaaa", "7.2", "linux-source-7.2 7.2.13-1", "2026-12-01T10:00:00")
    b = fake_built(cache_dir, "7.3.0-bbbb", "7.3", "linux-source-7.3 7.3~rc7-1~exp1",
                   "2026-12-01T11:00:00")
    user = fake_built(cache_dir, "7.2.13-mytree-cccc", "7.2", "/home/me/linux",
                      "2026-12-01T12:00:00")
    assert kb.find_built("built:7.3").name == b.name
    assert kb.find_built("built:7.2").name == a.name          # Debian's before a user tree
    assert kb.find_built(f"built:{user.name}").name == user.name
    assert kb.find_built("built").name == user.name           # the kernel built last
    assert [k.name for k in kb.list_built()] == [a.name, b.name, user.name]
    assert "panthor+tyr" in kb.describe(a) and "first build 600 s" in kb.describe(a)
    kernel, modules = boot.resolve_kernel("built:7.3", None, build=False)
    assert kernel == b.image and modules == b.modules
    with pytest.raises(RuntimeError, match="leave out --modules"):
        boot.resolve_kernel("built:7.3", Path("/x"), build=False)
    # any other --kernel is a path, passed through
    assert boot.resolve_kernel(Path("/boot/Image"), Path("/m")) == (Path("/boot/Image"), Path("/m"))


def test_boot_refuses_unknown_driver_before_anything_runs():
    with pytest.raises(ValueError, match="unknown driver 'nouveau'"):
        boot.boot("true", 5, driver="nouveau")


def test_cmdline_names_the_driver():
    assert "mali.driver=tyr" in boot.kernel_cmdline("tyr").split()
    assert "mali.driver=none" in boot.kernel_cmdline("none", "quiet").split()


def parse_boot(*argv: str):
    import argparse
    parser = argparse.ArgumentParser()
    boot.add_boot_arguments(parser)
    return boot.options_from_args(parser.parse_args(list(argv)))


def test_boot_command_line_becomes_options():
    o = parse_boot("--kernel", "built:7.3", "--driver", "tyr", "--guest-cmd", "true",
                   "--inject", "mcu_boot_fail")
    assert (o.kernel, o.modules, o.driver, o.guest_cmd) == ("built:7.3", None, "tyr", "true")
    assert o.inject == ["mcu_boot_fail"] and not o.use_qmp
    assert parse_boot().driver == "panthor"                 # a plain boot loads the driver
    assert parse_boot("--load-panthor").driver == "panthor"
    assert parse_boot("--break", "GPU_ID:r").use_qmp
    with pytest.raises(ValueError, match="contradicts"):
        parse_boot("--load-panthor", "--driver", "tyr")
    with pytest.raises(RuntimeError, match="go together"):
        parse_boot("--kernel", "/boot/Image")
    with pytest.raises(ValueError, match="unknown fault kind|kind"):
        parse_boot("--inject", "melt_gpu")


def test_tree_changes_and_outdated_targets(tmp_path):
    base, user, out = tmp_path / "debian", tmp_path / "mine", tmp_path / "out"
    tree(base)
    (base / "drivers/gpu/drm/tyr/driver.rs").write_text("fn probe() {}\n")
    (base / "drivers/gpu/drm/tyr/gpu.rs").write_text("fn gpu() {}\n")
    import shutil as sh
    import subprocess as sp
    sp.run(["cp", "-a", str(base), str(user)], check=True)
    assert kb.tree_changes(user, base) == []
    (user / "drivers/gpu/drm/tyr/driver.rs").write_text("fn probe() { info(); }\n")
    os_touch = user / "drivers/gpu/drm/tyr/gpu.rs"
    os_touch.write_text("fn gpu() {}\n")              # same contents, new time: unchanged
    (user / "drivers/gpu/drm/tyr/new.rs").write_text("")
    (base / "README").write_text("gone in mine\n")
    assert sorted(kb.tree_changes(user, base)) == ["README", "drivers/gpu/drm/tyr/driver.rs",
                                                   "drivers/gpu/drm/tyr/new.rs"]
    # kbuild's record of what tyr.o was built from names driver.rs: tyr.o must go
    d = out / "drivers/gpu/drm/tyr"
    d.mkdir(parents=True)
    (d / "tyr.o").write_bytes(b"old")
    (d / ".tyr.o.cmd").write_text("deps_drivers/gpu/drm/tyr/tyr.o := \\\n  /src/drivers/gpu/drm/tyr/driver.rs \\\n")
    (d / "other.o").write_bytes(b"keep")
    (d / ".other.o.cmd").write_text("deps := /src/drivers/gpu/drm/tyr/gpu.rs\n")
    assert kb._outdate(out, ["drivers/gpu/drm/tyr/driver.rs"]) == 1
    assert not (d / "tyr.o").exists() and (d / "other.o").exists()
    assert kb.STRUCTURAL.search("drivers/gpu/drm/tyr/Makefile")
    assert kb.STRUCTURAL.search("drivers/gpu/drm/tyr/Kconfig")
    assert not kb.STRUCTURAL.search("drivers/gpu/drm/tyr/driver.rs")
    sh.rmtree(out)
