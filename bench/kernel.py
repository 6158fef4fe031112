"""Guest kernels of `mali-vdev kernel build` and a Tyr boot on them.

- the first build of each version: the wall time of its make steps, recorded by the build
  itself (a first build takes 7-15 minutes on 2 cores; the benchmark does not redo it);
- the cached build: `kernel_build.build()` finding the entry, measured now;
- a boot of the built 7.2 and 7.3 kernels with Tyr probing the virtual G610, measured now:
  QEMU start to /init, and to the end of the guest command (`mali-driver current`), set
  beside the stock Debian kernel's /init time in the same run (panthor, same command).

`python -m bench.kernel`; part of `make bench`. Versions not built yet are reported and
skipped: `mali-vdev kernel build --version V` (or `make test`, which builds both) first.
"""

from __future__ import annotations

import time

TIMEOUT_S = 120.0
CMD = "mali-driver current"
# CI's whole budget is 90 minutes; a first build should be a small part of it.
FIRST_BUILD_TARGET_S = 15 * 60


def _boot(prepared, driver: str) -> dict:
    from qemu import boot
    r = boot.boot(CMD, TIMEOUT_S, driver=driver, prepared=prepared)
    if r.status != 0 or r.output.strip() != driver:
        raise RuntimeError(f"{driver} boot: status {r.status}, output {r.output.strip()!r}")
    return r.timings


def main() -> None:
    from qemu import boot
    from qemu import kernel_build as kb
    print("kernel: guest kernels of `mali-vdev kernel build` and Tyr boots on them")
    try:
        stock = _boot(boot.setup(), "panthor")
    except Exception as e:  # noqa: BLE001 - no guest assets here: say why, go on
        print(f"  skipped: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
        return
    for version in kb.VERSIONS:
        try:
            k = kb.find_built(f"built:{version}")
        except RuntimeError:
            print(f"  {version}: not built (mali-vdev kernel build --version {version})")
            continue
        t = time.monotonic()
        k = kb.build(version)
        cached = time.monotonic() - t
        print(f"  {version} first build (make)      {k.build_seconds:8.0f} s    target "
              f"<= {FIRST_BUILD_TARGET_S} s  ({k.source})")
        print(f"  {version} cached build            {cached:8.2f} s")
        try:
            tyr = _boot(boot.setup(kernel=k.image, modules=k.modules), "tyr")
        except Exception as e:  # noqa: BLE001 - the numbers are missing: say why, go on
            print(f"  {version} Tyr boot FAILED: {str(e).splitlines()[0]}")
            continue
        print(f"  {version} Tyr boot: /init at      {tyr['init']:8.2f} s    done at "
              f"{tyr['cmd_exit']:.2f} s, total {tyr['total']:.2f} s  (stock Debian kernel + "
              f"panthor: /init at {stock['init']:.2f} s, ratio "
              f"{stock['init'] / max(tyr['init'], 1e-3):.1f}x)")


if __name__ == "__main__":
    main()
