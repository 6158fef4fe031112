"""Unit tests for mali_regs.csf_iface (the CSF shared-memory interface tables)."""

import pytest

from mali_regs.csf_iface import (
    CS_CONTROL,
    CS_EVT_MASK,
    CS_INPUT,
    CS_OUTPUT,
    CS_REQ_MASK,
    CSG_CONTROL,
    CSG_EVT_MASK,
    CSG_INPUT,
    CSG_OUTPUT,
    CSG_REQ_MASK,
    GLB_CONTROL,
    GLB_EVT_MASK,
    GLB_INPUT,
    GLB_OUTPUT,
    GLB_REQ_MASK,
    IFACE_BLOCKS,
    RINGBUF_INPUT,
    RINGBUF_OUTPUT,
)
from mali_regs.regmap import Access

# panthor-contract.md §3.3 (offset -> name within each structure)
CONTRACT = {
    GLB_CONTROL: {0x00: "GLB_VERSION", 0x04: "GLB_FEATURES", 0x08: "GLB_INPUT_VA",
                  0x0C: "GLB_OUTPUT_VA", 0x10: "GLB_GROUP_NUM", 0x14: "GLB_GROUP_STRIDE",
                  0x18: "GLB_PERFCNT_SIZE", 0x1C: "GLB_INSTR_FEATURES"},
    GLB_INPUT: {0x00: "GLB_REQ", 0x04: "GLB_ACK_IRQ_MASK", 0x08: "GLB_DB_REQ",
                0x10: "GLB_PROGRESS_TIMER", 0x14: "GLB_POWEROFF_TIMER", 0x18: "GLB_CORE_EN_MASK",
                0x24: "GLB_PERFCNT_AS", 0x28: "GLB_PERFCNT_BASE", 0x30: "GLB_PERFCNT_EXTRACT",
                0x40: "GLB_PERFCNT_CONFIG", 0x5C: "GLB_PERFCNT_MMU_L2_ENABLE", 0x80: "GLB_IDLE_TIMER"},
    GLB_OUTPUT: {0x00: "GLB_ACK", 0x08: "GLB_DB_ACK", 0x10: "GLB_HALT_STATUS",
                 0x14: "GLB_PERFCNT_STATUS", 0x18: "GLB_PERFCNT_INSERT"},
    CSG_CONTROL: {0x00: "CSG_FEATURES", 0x04: "CSG_INPUT_VA", 0x08: "CSG_OUTPUT_VA",
                  0x0C: "CSG_SUSPEND_SIZE", 0x10: "CSG_PROTM_SUSPEND_SIZE",
                  0x14: "CSG_STREAM_NUM", 0x18: "CSG_STREAM_STRIDE"},
    CSG_INPUT: {0x00: "CSG_REQ", 0x04: "CSG_ACK_IRQ_MASK", 0x08: "CSG_DB_REQ", 0x0C: "CSG_IRQ_ACK",
                0x20: "CSG_ALLOW_COMPUTE", 0x28: "CSG_ALLOW_FRAGMENT", 0x30: "CSG_ALLOW_OTHER",
                0x34: "CSG_EP_REQ", 0x38: "CSG_EP_REQ2", 0x40: "CSG_SUSPEND_BUF",
                0x48: "CSG_PROTM_SUSPEND_BUF", 0x50: "CSG_CONFIG", 0x54: "CSG_ITER_TRACE_CONFIG"},
    CSG_OUTPUT: {0x00: "CSG_ACK", 0x08: "CSG_DB_ACK", 0x0C: "CSG_IRQ_REQ",
                 0x10: "CSG_STATUS_EP_CURRENT", 0x14: "CSG_STATUS_EP_REQ",
                 0x18: "CSG_STATUS_STATE", 0x1C: "CSG_RESOURCE_DEP"},
    CS_CONTROL: {0x00: "CS_FEATURES", 0x04: "CS_INPUT_VA", 0x08: "CS_OUTPUT_VA"},
    CS_INPUT: {0x00: "CS_REQ", 0x04: "CS_CONFIG", 0x0C: "CS_ACK_IRQ_MASK", 0x10: "CS_RINGBUF_BASE",
               0x18: "CS_RINGBUF_SIZE", 0x20: "CS_HEAP_START", 0x28: "CS_HEAP_END",
               0x30: "CS_RINGBUF_INPUT", 0x38: "CS_RINGBUF_OUTPUT", 0x40: "CS_INSTR_CONFIG",
               0x44: "CS_INSTRBUF_SIZE", 0x48: "CS_INSTRBUF_BASE", 0x50: "CS_INSTRBUF_OFFSET_PTR"},
    CS_OUTPUT: {0x00: "CS_ACK", 0x40: "CS_STATUS_CMD_PTR", 0x48: "CS_STATUS_WAIT",
                0x4C: "CS_STATUS_REQ_RESOURCE", 0x50: "CS_STATUS_WAIT_SYNC_PTR",
                0x58: "CS_STATUS_WAIT_SYNC_VALUE", 0x5C: "CS_STATUS_SCOREBOARDS",
                0x60: "CS_STATUS_BLOCKED_REASON", 0x64: "CS_STATUS_WAIT_SYNC_VALUE_HI",
                0x80: "CS_FAULT", 0x84: "CS_FATAL", 0x88: "CS_FAULT_INFO", 0x90: "CS_FATAL_INFO",
                0xC0: "CS_HEAP_VT_START", 0xC4: "CS_HEAP_VT_END", 0xCC: "CS_HEAP_FRAG_END",
                0xD0: "CS_HEAP_ADDRESS"},
    RINGBUF_INPUT: {0x0: "RB_INSERT", 0x8: "RB_EXTRACT"},
    RINGBUF_OUTPUT: {0x0: "RB_OUTPUT_EXTRACT", 0x8: "RB_ACTIVE"},
}


@pytest.mark.parametrize("block", IFACE_BLOCKS, ids=lambda b: b.name)
def test_iface_offsets(block):
    for off, name in CONTRACT[block].items():
        reg, _ = block.lookup(off)
        assert reg.name == name
    regs = sorted(block.registers, key=lambda r: r.offset)
    for a, b in zip(regs, regs[1:]):
        assert a.end <= b.offset


@pytest.mark.parametrize("block", IFACE_BLOCKS, ids=lambda b: b.name)
def test_iface_access_is_the_hosts_view(block):
    want = Access.RW if block.name.endswith("_INPUT") else Access.RO
    assert {r.access for r in block} == {want}


def _mask(reg, names):
    m = 0
    for n in names:
        m |= reg.field(n).mask
    return m


def test_req_and_event_masks_match_the_fields():
    glb = GLB_INPUT.GLB_REQ
    assert GLB_REQ_MASK == _mask(glb, ["HALT", "CFG_PROGRESS_TIMER", "CFG_ALLOC_EN",
                                       "CFG_POWEROFF_TIMER", "PROTM_ENTER", "PERFCNT_EN",
                                       "PERFCNT_SAMPLE", "COUNTER_EN", "PING", "FWCFG_UPDATE",
                                       "IDLE_EN"])
    assert GLB_EVT_MASK == _mask(glb, ["INACTIVE_COMPUTE", "INACTIVE_FRAGMENT", "INACTIVE_TILER",
                                       "PROTM_EXIT", "PERFCNT_THRESHOLD", "PERFCNT_OVERFLOW", "IDLE"])
    csg = CSG_INPUT.CSG_REQ
    assert CSG_REQ_MASK == _mask(csg, ["STATE", "ENDPOINT_CONFIG", "STATUS_UPDATE"])
    assert CSG_EVT_MASK == _mask(csg, ["SYNC_UPDATE", "IDLE", "PROGRESS_TIMER_EVENT"])
    cs = CS_INPUT.CS_REQ
    assert CS_REQ_MASK == _mask(cs, ["STATE", "EXTRACT_EVENT", "IDLE_SYNC_WAIT",
                                     "IDLE_PROTM_PENDING", "IDLE_EMPTY", "IDLE_RESOURCE_REQ"])
    assert CS_EVT_MASK == _mask(cs, ["TILER_OOM", "PROTM_PENDING", "FATAL", "FAULT"])


def test_iface_decode_examples():
    assert GLB_INPUT.decode(0x0, 0x486) == \
        "GLB_REQ = 0x00000486 (CFG_PROGRESS_TIMER|CFG_ALLOC_EN|COUNTER_EN|IDLE_EN)"
    assert CSG_INPUT.decode(0x0, 0x10000013) == \
        "CSG_REQ = 0x10000013 (STATE=RESUME, ENDPOINT_CONFIG|SYNC_UPDATE)"
    assert CS_CONTROL.CS_FEATURES.fields(0x0007085F) == {
        "WORK_REGS": 95, "SCOREBOARDS": 8, "COMPUTE": 1, "FRAGMENT": 1, "TILER": 1}
    assert CS_OUTPUT.decode(0x84, 0x41) == \
        "CS_FATAL = 0x00000041 (EXCEPTION_TYPE=CS_UNRECOVERABLE, EXCEPTION_DATA=0x0)"
    assert CS_INPUT.CS_CONFIG.encode(PRIORITY=3, DOORBELL=2) == 0x203
    assert CSG_INPUT.CSG_EP_REQ.encode(COMPUTE_EP=4, FRAGMENT_EP=4, TILER_EP=1, PRIORITY=0xF) == 0xF0010404
    assert GLB_CONTROL.GLB_VERSION.encode(MAJOR=1, MINOR=1) == 0x01010000
    assert GLB_INPUT.GLB_IDLE_TIMER.fields(0x80000010) == {"TIMEOUT": 0x10, "SOURCE": 1}


def test_arm_strides_hold_the_blocks_they_stride():
    from mali_regs import csf_iface as I
    for stride, block in ((I.CSG_INPUT_STRIDE, CSG_INPUT), (I.CSG_OUTPUT_STRIDE, CSG_OUTPUT),
                          (I.CS_INPUT_STRIDE, CS_INPUT), (I.CS_OUTPUT_STRIDE, CS_OUTPUT)):
        assert block.size <= stride, f"{block.name} is 0x{block.size:x} bytes, its stride 0x{stride:x}"
        assert all(r.end <= stride for r in block.registers), block.name
