"""The dmesg filter of the panthor integration tests, on lines panthor really prints
(format strings from the guest's panthor.ko) and on the lines of a good boot."""

from tests.integration.test_panthor_probe import bad_lines

GOOD_BOOT = """\
[    0.000000] Kernel command line: console=ttyAMA0 rdinit=/init panic=-1 mali.load_panthor=1
[    1.899135] panthor 10000000.gpu: [drm] clock rate = 800000000
[    1.901788] panthor 10000000.gpu: error -ENODEV: _opp_set_regulators: no regulator (mali) found
[    1.907698] panthor 10000000.gpu: [drm] Mali-G610 id 0xa867 major 0x0 minor 0x0 status 0x5
[    1.907730] panthor 10000000.gpu: [drm] Features: L2:0x7120306 Tiler:0x809 Mem:0x301 MMU:0x2830 AS:0xff
[    1.907749] panthor 10000000.gpu: [drm] shader_present=0x50005 l2_present=0x1 tiler_present=0x1
[    1.924361] panthor 10000000.gpu: [drm] Firmware protected mode entry is not supported, ignoring
[    1.925053] panthor 10000000.gpu: [drm] Firmware git sha: 95a25d71030715381f33105394285e1dcc860a65
[    1.928672] panthor 10000000.gpu: [drm] CSF FW using interface v1.1.0, Features 0x0 Instrumentation features 0x71
[    1.930619] panthor 10000000.gpu: [drm] Using Transparent Hugepage
[    1.932023] [drm] Initialized panthor 1.8.0 for 10000000.gpu on minor 0
[    2.100000] random: crng init done
""".splitlines()

PROBLEMS = [
    "[   13.9] panthor 10000000.gpu: [drm] *ERROR* FW ping timeout, scheduling a reset",
    "[    1.9] panthor 10000000.gpu: [drm] *ERROR* Invalid firmware magic",
    "[    1.9] panthor 10000000.gpu: [drm] *ERROR* Failed to boot MCU after reset, making device unusable.",
    "[    5.0] panthor 10000000.gpu: [drm] Timed out waiting for MCU to halt",
    "[    5.0] panthor 10000000.gpu: [drm] Failed to cleanly suspend MCU",
    "[    6.0] panthor 10000000.gpu: [drm] GPU Fault 0x00000088 (TRANSLATION_FAULT_0) at 0x0000000004000000",
    "[    6.0] panthor 10000000.gpu: [drm] Reset already pending",
    "[    6.0] panthor 10000000.gpu: [drm] Power on L2 domain not allowed",
    "[    6.0] panthor 10000000.gpu: [drm] CS_FATAL: pid=12, comm=panthor-client",
    "[    6.0] panthor 10000000.gpu: [drm] CSG slot 0 progress timeout",
    "[    7.0] WARNING: CPU: 0 PID: 50 at drivers/gpu/drm/panthor/panthor_fw.c:1100 panthor_fw_halt+0x1c/0x40 [panthor]",
    "[    7.0] panthor 10000000.gpu: probe with driver panthor failed with error -110",
]


def test_a_good_boot_has_no_problem_line():
    assert bad_lines(GOOD_BOOT) == []


def test_each_problem_line_is_caught():
    assert bad_lines(PROBLEMS) == PROBLEMS
