"""The control socket: status and debug reads of GPU memory that do not disturb the guest."""

import pytest

from mali_gpu.control import ControlServer, request

from mali_gpu.driver_model import Driver, Gpu, PageTables, TRANSCFG_4K_48


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
    assert st["gpu_id"] == 0xA8670005 and st["mcu_status"] == 1 and st["boots"] == 1
    assert [a["as"] for a in st["address_spaces"]] == [0]


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
