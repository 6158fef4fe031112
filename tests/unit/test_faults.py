"""Fault injection at each hook point, seen through the registers the driver reads."""

import pytest

from mali_base.faults import load_file, parse_spec
from mali_gpu.control import ControlServer, request
from mali_regs import csf_iface as I
from scheduler.isa import Op, encode
from tests.driver_model import BUF_VA, GLB_IN, GLB_OUT, Driver, DriverError, Group, glb_bits, mov32, mov48


def test_spec_parsing():
    inj = parse_spec("mmu_fault:as=1,va=0x200000,size=0x2000,skip=2,count=0")
    assert (inj.kind, inj.skip, inj.count) == ("mmu_fault", 2, 0)
    assert inj.params == {"as": 1, "va": 0x200000, "size": 0x2000}
    for bad in ("nope", "cs_fatal:exception", "cs_fatal:colour=3", "stall_csg:slot=x"):
        with pytest.raises(ValueError):
            parse_spec(bad)


def test_toml_file(tmp_path):
    f = tmp_path / "faults.toml"
    f.write_text('[[inject]]\nkind = "stall_csg"\nslot = 0\ncount = 2\n\n[[inject]]\nkind = "gpu_fault"\nat_s = 1.5\n')
    a, b = load_file(str(f))
    assert (a.kind, a.params, a.count) == ("stall_csg", {"slot": 0}, 2)
    assert (b.kind, b.at_s) == ("gpu_fault", 1.5)


def test_mcu_boot_fail_once_then_boots(gpu):
    Driver(gpu)
    gpu.dev.inject(parse_spec("mcu_boot_fail"))
    gpu.write("MCU_CONTROL", 2)
    assert gpu.read("MCU_STATUS") == 0 and gpu.read("JOB_IRQ_RAWSTAT") == 0
    gpu.write("MCU_CONTROL", 0)
    gpu.write("MCU_CONTROL", 2)
    assert gpu.read("MCU_STATUS") == 1


def test_drop_ping_ack_after_skip(gpu):
    d = Driver(gpu)
    gpu.write("MCU_CONTROL", 2)
    gpu.dev.inject(parse_spec("drop_ping_ack:skip=1"))
    ping = glb_bits("PING")
    results = []
    for _ in range(3):
        d.toggle(ping)
        d.doorbell()
        results.append((d.u32(GLB_IN) ^ d.u32(GLB_OUT)) & ping == 0)
    assert results == [True, False, True]  # the third toggle finds the second still pending


def test_stall_csg_leaves_the_request_pending(gpu):
    d = Driver(gpu)
    gpu.write("MCU_CONTROL", 2)
    gpu.dev.inject(parse_spec("stall_csg:slot=0"))
    with pytest.raises(DriverError, match="not acknowledged"):
        Group(gpu, d)  # START is not acknowledged
    mcu = gpu.dev.mcu
    assert (mcu.csg(I.CSG_INPUT, 0)["CSG_REQ"] ^ mcu.csg(I.CSG_OUTPUT, 0)["CSG_ACK"]) & 7


def test_as_active_stuck_until_reset(gpu):
    gpu.dev.inject(parse_spec("as_active_stuck:as=2"))
    gpu.write("AS_COMMAND[1]", 1)
    assert gpu.read("AS_STATUS[1]") == 0
    gpu.write("AS_COMMAND[2]", 1)
    assert gpu.read("AS_STATUS[2]") == 1 and gpu.read("AS_STATUS[2]") == 1
    gpu.write("GPU_COMMAND", 0x101)
    assert gpu.read("AS_STATUS[2]") == 0


def test_mmu_fault_at_a_chosen_va_during_a_job(gpu):
    d = Driver(gpu)
    gpu.write("MCU_CONTROL", 2)
    gpu.write("MMU_IRQ_MASK", 0xFFFF)
    g = Group(gpu, d)
    gpu.dev.inject(parse_spec(f"mmu_fault:as=1,va={BUF_VA + 0x1000:#x}"))
    g.submit([mov48(0, BUF_VA), mov32(2, 5), encode(Op.STORE_MULTIPLE, addr=0, base=2, mask=1, offset=0),
              encode(Op.STORE_MULTIPLE, addr=0, base=2, mask=1, offset=0x1008)])
    g.run()
    assert g.buf(0) == 5                                     # outside the range: fine
    assert gpu.read("AS_FAULTADDRESS[1]") == BUF_VA + 0x1008
    assert gpu.read("AS_FAULTSTATUS[1]") & 0xFF == 0xC3
    assert g.out()["CS_FATAL"] & 0xFF == 0xC3


def test_cs_fatal_on_the_next_instruction(gpu):
    d = Driver(gpu)
    gpu.write("MCU_CONTROL", 2)
    g = Group(gpu, d)
    gpu.dev.inject(parse_spec("cs_fatal:exception=0x41"))
    g.submit([mov32(2, 1)])
    g.run()
    assert g.out()["CS_FATAL"] == 0x41


def test_gpu_fault_now_and_through_the_control_socket(gpu, tmp_path):
    gpu.write("GPU_IRQ_MASK", 0x20103)
    ctl = ControlServer(gpu.dev, str(tmp_path / "ctl"))
    ctl.start()
    try:
        answer = request(str(tmp_path / "ctl"), {"cmd": "inject", "spec": "gpu_fault:exception=0x88,address=0x1234"})
        assert answer["fired"] == 1
        assert "error" in request(str(tmp_path / "ctl"), {"cmd": "inject", "spec": "bogus"})
    finally:
        ctl.close()
    assert gpu.read("GPU_FAULTSTATUS") == 0x88 and gpu.read("GPU_FAULTADDRESS") == 0x1234
    assert gpu.read("GPU_IRQ_STATUS") & 1 and gpu.line
