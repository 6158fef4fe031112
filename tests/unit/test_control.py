"""The control socket: status and debug reads of GPU memory that do not disturb the guest."""

import pytest

from mali_gpu.control import ControlServer, request
from tests.driver_model import TRANSCFG_4K_48, Driver, Gpu, PageTables


@pytest.fixture
def served(tmp_path):
    g = Gpu()
    ctl = ControlServer(g.dev, str(tmp_path / "ctl"))
    ctl.start()
    yield g, str(tmp_path / "ctl")
    ctl.close()
    g.close()


def test_status_reports_mcu_and_address_spaces(served):
    gpu, path = served
    Driver(gpu)
    gpu.write("MCU_CONTROL", 2)
    st = request(path, {"cmd": "status"})
    assert st["gpu_id"] == 0xA8670005 and st["mcu_status"] == "ENABLED" and st["boots"] == 1
    assert [a["as"] for a in st["address_spaces"]] == [0]
    assert st["mcu_fatal"] is None


def test_status_says_why_the_mcu_is_fatal(served):
    from mali_gpu.control import format_status
    gpu, path = served
    gpu.write("MCU_CONTROL", 2)  # AS0 never programmed: the firmware cannot reach its section
    st = request(path, {"cmd": "status"})
    assert st["mcu_status"] == "FATAL" and "not reachable through AS0" in st["mcu_fatal"]
    assert "MCU fatal: boot: the shared section at MCU VA 0x4000000" in format_status(st)
    Driver(gpu)
    gpu.write("MCU_CONTROL", 2)  # a boot that works clears it
    st = request(path, {"cmd": "status"})
    assert st["mcu_status"] == "ENABLED" and st["mcu_fatal"] is None


def test_gpu_read_through_any_user_as_without_faulting_the_guest(served):
    gpu, path = served
    gpu.write("MMU_IRQ_MASK", 0xFFFF)
    pt = PageTables(gpu.ram)
    pa = gpu.ram.alloc()
    pt.map(0x1234_5000, pa, 0x1000)
    gpu.ram.write(pa + 0x10, b"pattern!")
    gpu.write("AS_TRANSTAB[3]", pt.root)
    gpu.write("AS_TRANSCFG[3]", TRANSCFG_4K_48)
    gpu.write("AS_COMMAND[3]", 1)
    got = request(path, {"cmd": "gpu_read", "as": "any", "va": 0x1234_5010, "size": 8})
    assert got["results"] == [{"as": 3, "data": b"pattern!".hex()}]
    miss = request(path, {"cmd": "gpu_read", "as": 3, "va": 0x9999_0000, "size": 4})
    assert miss["results"][0]["fault"] == 0xC1
    assert gpu.read("MMU_IRQ_RAWSTAT") == 0 and not gpu.line   # the guest saw nothing
    assert request(path, {"cmd": "translate", "as": 3, "va": 0x1234_5010})["pa"] == pa + 0x10


def test_bad_requests_get_errors(served):
    gpu, path = served
    assert "error" in request(path, {"cmd": "nope"})
    assert "error" in request(path, {"cmd": "gpu_read", "as": 1, "va": 0, "size": 1 << 30})
    assert "error" in request(path, {"cmd": "gpu_read"})


def test_status_shows_streams_with_ring_pointers_waits_and_next_instructions(served):
    from mali_gpu.control import format_status
    from scheduler.isa import Op, encode
    from tests.driver_model import SYNC_VA, Group, mov32, mov48
    gpu, path = served
    d = Driver(gpu)
    gpu.write("MCU_CONTROL", 2)
    g = Group(gpu, d)
    g.submit([mov48(0, SYNC_VA), mov32(2, 5), encode(Op.SYNC_WAIT32, addr=0, data=2, cond=1),
              mov32(3, 1), mov32(4, 2)])
    g.run()
    st = request(path, {"cmd": "status"})
    cs = st["csg_slots"][0]["streams"][0]
    assert st["csg_slots"][0]["state"] == "START" and cs["blocked_reason"] == "SYNC_WAIT"
    assert cs["wait"] == {"addr": SYNC_VA, "value": 5, "cond": "GT", "current": 0}
    assert cs["ring"]["insert"] == 40 and cs["ring"]["extract"] == 16
    assert cs["next"][0].endswith("SYNC_WAIT32 [d0] > r2") or "SYNC_WAIT32" in cs["next"][0]
    assert len(cs["next"]) == 3 and "MOVE32 r4" in cs["next"][2]
    text = format_status(st)
    assert "CSG0: START AS1" in text and "waits for [0x400000] GT 0x5 (now 0)" in text
    assert st["glb"] is not None and st["mcu_status"] == "ENABLED"


def test_status_shows_the_last_run_fragment_decoded(served):
    from mali_gpu.control import format_status
    from mali_regs import descriptors as D
    from scheduler.isa import Op, encode
    from tests.driver_model import BUF_VA, Group, mov32, mov48
    gpu, path = served
    d = Driver(gpu)
    gpu.write("MCU_CONTROL", 2)
    g = Group(gpu, d)
    fbd_va = BUF_VA + 0x1000
    rt = D.RGB_RENDER_TARGET.encode(internal_format="R8G8B8A8", writeback_format="R8G8B8A8", swizzle="RGBA",
                                    writeback_block_format="Linear", write_enable=True, clean_pixel_write_enable=True,
                                    writeback_buffer_base=BUF_VA + 0x2000, writeback_buffer_row_stride=64,
                                    clear_color_0=0xFF0000FF)
    gpu.ram.write(g.pa[BUF_VA] + 0x1000, D.FRAMEBUFFER_PARAMETERS.encode(
        width=16, height=16, bound_max_x=15, bound_max_y=15, render_target_count=1) + bytes(64) + rt)
    g.submit([mov48(40, D.FRAMEBUFFER_POINTER.encode_int(pointer=fbd_va, render_target_count=1)),
              mov32(42, 0), mov32(43, 15 << 16 | 15), encode(Op.RUN_FRAGMENT), encode(Op.WAIT, wait_mask=1)])
    g.run()
    assert g.buf(0x2000) == 0xFF0000FF
    st = request(path, {"cmd": "status"})
    frag = st["csg_slots"][0]["streams"][0]["last_fragment"]
    assert frag[0].startswith(f"FBD 0x{fbd_va:x}: Framebuffer Parameters: ") and "Width=16" in frag[0]
    assert "RT0: RGB Render Target: " in frag[1] and "Internal Format=R8G8B8A8" in frag[1]
    assert "last RUN_FRAGMENT:" in format_status(st)


def test_status_shows_the_last_run_compute_with_its_first_instructions(served):
    from mali_gpu.control import format_status
    from tests.compute_model import SHADER_VA, run_compute_cs, setup_compute
    from tests.driver_model import BUF_VA, Group
    gpu, path = served
    d = Driver(gpu)
    gpu.write("MCU_CONTROL", 2)
    g = Group(gpu, d)
    nfau, wg = setup_compute(g, "MOV.i32 r2, u2\nSHADDX.u64 r0, u0, r60.w0, shift:0x2\n"
                                "STORE.i32.slot0.end @r2, r0, offset:0", [BUF_VA, 0, 0x1234], wg=(32, 1, 1))
    g.submit(run_compute_cs(nfau, wg, (2, 1, 1)))
    g.run(rounds=50)
    assert g.buf(4 * 63) == 0x1234
    st = request(path, {"cmd": "status"})
    comp = st["csg_slots"][0]["streams"][0]["last_compute"]
    assert comp[0].startswith("RUN_COMPUTE at 0x")
    assert comp[1].startswith("workgroup 32x1x1, 2x1x1 workgroups (64 threads)")
    assert "Shader Program: " in comp[2] and "Stage=Compute" in comp[2] and "Preload=0x1000" in comp[2]
    assert comp[4:] == [f"  0x{SHADER_VA:x}: MOV.i32 r2, u2", f"  0x{SHADER_VA + 8:x}: SHADDX.u64 r0, u0, r60.w0, shift:0x2",
                        f"  0x{SHADER_VA + 16:x}: STORE.i32.slot0.end @r2, r0, offset:0"]
    assert "last RUN_COMPUTE:" in format_status(st)
