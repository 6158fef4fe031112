"""The CSF firmware interface (shared memory, not MMIO) as register blocks.

The MCU and the host talk through structures in the firmware's shared section
(MCU VA 0x04000000): a GLB control/input/output triple, per CSG slot the same, per
CS the same, and per queue a ring-buffer input/output pair.  They are declared here
with the MMIO framework so the emulated firmware, logs and traces share one set of
names and bit decoders: ``GLB_INPUT.decode(0x0, req)`` gives
``GLB_REQ = 0x... (PING|...)``.  Offsets are relative to the start of each structure.

Access is from the *host's* point of view: ``*_CONTROL`` and ``*_OUTPUT`` are RO (the
firmware writes them), ``*_INPUT`` RW.

Source: panthor ``panthor_fw.h`` struct layouts and bit definitions as summarized in
shared/docs/panthor-contract.md §3.3 (facts only).  The GLB ``STATE`` field [14:12] of
interface >= 4.1 overlaps ``SLEEP`` (bit 12) of older interfaces; the G610 firmware is
v1.x, so ``SLEEP`` is declared and bits 13/14 decode as ``UNK``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .enums import EXCEPTION_TYPES
from .regmap import R32, R64, Access, F, RegisterBlock, flags

RO, RW = Access.RO, Access.RW

__all__ = [
    "GLB_CONTROL", "GLB_INPUT", "GLB_OUTPUT", "CSG_CONTROL", "CSG_INPUT", "CSG_OUTPUT",
    "CS_CONTROL", "CS_INPUT", "CS_OUTPUT", "RINGBUF_INPUT", "RINGBUF_OUTPUT", "IFACE_BLOCKS",
    "GLB_REQ_MASK", "GLB_EVT_MASK", "CSG_REQ_MASK", "CSG_EVT_MASK", "CS_REQ_MASK", "CS_EVT_MASK",
    "SHARED_SECTION_VA", "SHARED_SECTION_SIZE", "MCU_PAGE_SIZE", "CSG_CONTROL_OFFSET", "CS_CONTROL_OFFSET",
    "SharedLayout", "ARM_LAYOUT",
]

#: MCU VA of the shared interface section, and its size in Arm's images.
SHARED_SECTION_VA = 0x04000000
SHARED_SECTION_SIZE = 0x10000
MCU_PAGE_SIZE = 0x1000
#: CSG i control block at ``CSG_CONTROL_OFFSET + i * group_stride`` in the shared section.
CSG_CONTROL_OFFSET = 0x1000
#: CS j control block at ``CSG control + CS_CONTROL_OFFSET + j * stream_stride``.
CS_CONTROL_OFFSET = 0x40


def _version_fields():
    return (F("MAJOR", 31, 24), F("MINOR", 23, 16), F("PATCH", 15, 0))


def _timer_fields():
    return (F("TIMEOUT", 30, 0, doc="in units of 1024 ticks"),
            F("SOURCE", 31, enum={0: "SYSTEM_TIMESTAMP", 1: "GPU_CYCLE_COUNTER"}))


# --- global interface ----------------------------------------------------------------------

_GLB_REQ = flags({
    0: "HALT", 1: "CFG_PROGRESS_TIMER", 2: "CFG_ALLOC_EN", 3: "CFG_POWEROFF_TIMER",
    4: "PROTM_ENTER", 5: "PERFCNT_EN", 6: "PERFCNT_SAMPLE", 7: "COUNTER_EN", 8: "PING",
    9: "FWCFG_UPDATE", 10: "IDLE_EN", 12: "SLEEP",
    20: "INACTIVE_COMPUTE", 21: "INACTIVE_FRAGMENT", 22: "INACTIVE_TILER", 23: "PROTM_EXIT",
    24: "PERFCNT_THRESHOLD", 25: "PERFCNT_OVERFLOW", 26: "IDLE", 30: "DBG_CSF", 31: "DBG_HOST"})

#: host -> FW requests (acked by copying REQ to ACK)
GLB_REQ_MASK = 0x000007FF
#: FW -> host events (FW toggles ACK, host acks by copying ACK to REQ)
GLB_EVT_MASK = 0x07F00000

GLB_CONTROL = RegisterBlock("GLB_CONTROL", 0x0, size=0x20, doc="Global interface control (FW-written)", members=[
    R32("GLB_VERSION", 0x00, RO, fields=_version_fields(), doc="Interface version; panthor needs != 0"),
    R32("GLB_FEATURES", 0x04, RO, doc="Global features"),
    R32("GLB_INPUT_VA", 0x08, RO, doc="MCU VA of GLB input (inside the shared section)"),
    R32("GLB_OUTPUT_VA", 0x0C, RO, doc="MCU VA of GLB output (inside the shared section)"),
    R32("GLB_GROUP_NUM", 0x10, RO, doc="Number of CSG slots (3..31)"),
    R32("GLB_GROUP_STRIDE", 0x14, RO, doc="Bytes between CSG control blocks"),
    R32("GLB_PERFCNT_SIZE", 0x18, RO, doc="Performance counter buffer size"),
    R32("GLB_INSTR_FEATURES", 0x1C, RO, doc="Instrumentation features (iface >= 1.1)"),
])

GLB_INPUT = RegisterBlock("GLB_INPUT", 0x0, size=0x84, doc="Global interface input (host-written)", members=[
    R32("GLB_REQ", 0x00, RW, fields=_GLB_REQ, doc="Requests (toggle/level bits) and event acks"),
    R32("GLB_ACK_IRQ_MASK", 0x04, RW, fields=_GLB_REQ, doc="ACK bits that raise the GLB IRQ"),
    R32("GLB_DB_REQ", 0x08, RW, fields=flags({n: f"CSG{n}" for n in range(32)}),
        doc="Doorbell requests: bit i = CSG slot i"),
    R32("GLB_PROGRESS_TIMER", 0x10, RW, doc="Progress timeout (GPU cycles / 1024)"),
    R32("GLB_POWEROFF_TIMER", 0x14, RW, fields=_timer_fields(), doc="Shader power-off delay"),
    R64("GLB_CORE_EN_MASK", 0x18, RW, doc="Shader cores the FW may use (panthor: shader_present)"),
    R32("GLB_PERFCNT_AS", 0x24, RW, doc="Perf counter address space"),
    R64("GLB_PERFCNT_BASE", 0x28, RW, doc="Perf counter buffer"),
    R32("GLB_PERFCNT_EXTRACT", 0x30, RW, doc="Perf counter extract index"),
    R32("GLB_PERFCNT_CONFIG", 0x40, RW, doc="Perf counter configuration"),
    R32("GLB_PERFCNT_CSG_SELECT", 0x44, RW, doc="Perf counter CSG select"),
    R32("GLB_PERFCNT_FW_ENABLE", 0x48, RW, doc="Perf counter enable: firmware"),
    R32("GLB_PERFCNT_CSG_ENABLE", 0x4C, RW, doc="Perf counter enable: CSG"),
    R32("GLB_PERFCNT_CSF_ENABLE", 0x50, RW, doc="Perf counter enable: CSF"),
    R32("GLB_PERFCNT_SHADER_ENABLE", 0x54, RW, doc="Perf counter enable: shader"),
    R32("GLB_PERFCNT_TILER_ENABLE", 0x58, RW, doc="Perf counter enable: tiler"),
    R32("GLB_PERFCNT_MMU_L2_ENABLE", 0x5C, RW, doc="Perf counter enable: MMU/L2"),
    R32("GLB_IDLE_TIMER", 0x80, RW, fields=_timer_fields(), doc="GPU idle detection delay"),
])

GLB_OUTPUT = RegisterBlock("GLB_OUTPUT", 0x0, size=0x1C, doc="Global interface output (FW-written)", members=[
    R32("GLB_ACK", 0x00, RO, fields=_GLB_REQ, doc="Acks of GLB_REQ and FW events"),
    R32("GLB_DB_ACK", 0x08, RO, fields=flags({n: f"CSG{n}" for n in range(32)}),
        doc="Doorbell acks (FW copies GLB_DB_REQ here)"),
    R32("GLB_HALT_STATUS", 0x10, RO, doc="0 OK, 0x4E panic, 0x4F watchdog"),
    R32("GLB_PERFCNT_STATUS", 0x14, RO, doc="Perf counter status"),
    R32("GLB_PERFCNT_INSERT", 0x18, RO, doc="Perf counter insert index"),
])

# --- command stream groups ----------------------------------------------------------------

_CSG_REQ = (F("STATE", 2, 0, {0: "TERMINATE", 1: "START", 2: "SUSPEND", 3: "RESUME"}),) + flags({
    4: "ENDPOINT_CONFIG", 5: "STATUS_UPDATE", 28: "SYNC_UPDATE", 29: "IDLE", 30: "DOORBELL",
    31: "PROGRESS_TIMER_EVENT"})
CSG_REQ_MASK = 0x00000037
CSG_EVT_MASK = 0xB0000000

_CS_BITS = flags({n: f"CS{n}" for n in range(32)})
_ENDPOINT = (F("COMPUTE_EP", 7, 0), F("FRAGMENT_EP", 15, 8), F("TILER_EP", 19, 16),
             F("EXCL_COMPUTE", 20), F("EXCL_FRAGMENT", 21), F("PRIORITY", 31, 28))

CSG_CONTROL = RegisterBlock("CSG_CONTROL", 0x0, size=0x1C, doc="CSG slot control (FW-written)", members=[
    R32("CSG_FEATURES", 0x00, RO, doc="CSG features"),
    R32("CSG_INPUT_VA", 0x04, RO, doc="MCU VA of this slot's input"),
    R32("CSG_OUTPUT_VA", 0x08, RO, doc="MCU VA of this slot's output"),
    R32("CSG_SUSPEND_SIZE", 0x0C, RO, doc="Suspend buffer size (> 0)"),
    R32("CSG_PROTM_SUSPEND_SIZE", 0x10, RO, doc="Protected-mode suspend buffer size (> 0)"),
    R32("CSG_STREAM_NUM", 0x14, RO, doc="Streams per group (8..32)"),
    R32("CSG_STREAM_STRIDE", 0x18, RO, doc="Bytes between CS control blocks"),
])

CSG_INPUT = RegisterBlock("CSG_INPUT", 0x0, size=0x58, doc="CSG slot input (host-written)", members=[
    R32("CSG_REQ", 0x00, RW, fields=_CSG_REQ, doc="State request, toggles and event acks"),
    R32("CSG_ACK_IRQ_MASK", 0x04, RW, fields=_CSG_REQ[1:], doc="ACK bits that raise the CSG IRQ"),
    R32("CSG_DB_REQ", 0x08, RW, fields=_CS_BITS, doc="Doorbell requests: bit j = CS j"),
    R32("CSG_IRQ_ACK", 0x0C, RW, fields=_CS_BITS, doc="Acks of CSG_IRQ_REQ (per CS)"),
    R64("CSG_ALLOW_COMPUTE", 0x20, RW, doc="Shader cores allowed for compute"),
    R64("CSG_ALLOW_FRAGMENT", 0x28, RW, doc="Shader cores allowed for fragment"),
    R32("CSG_ALLOW_OTHER", 0x30, RW, doc="Tilers allowed"),
    R32("CSG_EP_REQ", 0x34, RW, fields=_ENDPOINT, doc="Endpoint request and priority"),
    R64("CSG_EP_REQ2", 0x38, RW, doc="Endpoint request (iface >= 4.0)"),
    R64("CSG_SUSPEND_BUF", 0x40, RW, doc="Suspend buffer (MCU VA)"),
    R64("CSG_PROTM_SUSPEND_BUF", 0x48, RW, doc="Protected-mode suspend buffer (MCU VA)"),
    R32("CSG_CONFIG", 0x50, RW, fields=(F("AS", 3, 0, doc="address space of the group's VM"),),
        doc="Group configuration: address space"),
    R32("CSG_ITER_TRACE_CONFIG", 0x54, RW, doc="Iterator trace configuration"),
])

CSG_OUTPUT = RegisterBlock("CSG_OUTPUT", 0x0, size=0x20, doc="CSG slot output (FW-written)", members=[
    R32("CSG_ACK", 0x00, RO, fields=_CSG_REQ, doc="Acks of CSG_REQ and FW events"),
    R32("CSG_DB_ACK", 0x08, RO, fields=_CS_BITS, doc="Doorbell acks"),
    R32("CSG_IRQ_REQ", 0x0C, RO, fields=_CS_BITS, doc="Per-CS IRQ requests (toggle)"),
    R32("CSG_STATUS_EP_CURRENT", 0x10, RO, fields=_ENDPOINT[:3], doc="Endpoints in use"),
    R32("CSG_STATUS_EP_REQ", 0x14, RO, fields=_ENDPOINT, doc="Endpoint request as seen by FW"),
    R32("CSG_STATUS_STATE", 0x18, RO, fields=flags({0: "IS_IDLE"}), doc="Group state"),
    R32("CSG_RESOURCE_DEP", 0x1C, RO, doc="Resource dependencies"),
])

# --- command streams ----------------------------------------------------------------------------

_CS_REQ = (F("STATE", 2, 0, {0: "STOP", 1: "START"}),) + flags({
    4: "EXTRACT_EVENT", 8: "IDLE_SYNC_WAIT", 9: "IDLE_PROTM_PENDING", 10: "IDLE_EMPTY",
    11: "IDLE_RESOURCE_REQ", 26: "TILER_OOM", 27: "PROTM_PENDING", 30: "FATAL", 31: "FAULT"})
CS_REQ_MASK = 0x00000F17
CS_EVT_MASK = 0xCC000000

_EXCEPTION = (F("EXCEPTION_TYPE", 7, 0, EXCEPTION_TYPES), F("EXCEPTION_DATA", 31, 8))

CS_CONTROL = RegisterBlock("CS_CONTROL", 0x0, size=0xC, doc="CS control (FW-written)", members=[
    R32("CS_FEATURES", 0x00, RO, doc="Stream features (identical for every CS)", fields=(
        F("WORK_REGS", 7, 0, doc="CS registers minus one"), F("SCOREBOARDS", 15, 8),
        F("COMPUTE", 16), F("FRAGMENT", 17), F("TILER", 18))),
    R32("CS_INPUT_VA", 0x04, RO, doc="MCU VA of this stream's input"),
    R32("CS_OUTPUT_VA", 0x08, RO, doc="MCU VA of this stream's output"),
])

CS_INPUT = RegisterBlock("CS_INPUT", 0x0, size=0x58, doc="CS input (host-written)", members=[
    R32("CS_REQ", 0x00, RW, fields=_CS_REQ, doc="State request, idle config and event acks"),
    R32("CS_CONFIG", 0x04, RW, fields=(F("PRIORITY", 3, 0), F("DOORBELL", 15, 8)),
        doc="Priority and doorbell id (= CSG slot + 1)"),
    R32("CS_ACK_IRQ_MASK", 0x0C, RW, fields=_CS_REQ[1:], doc="ACK bits that raise the CS IRQ"),
    R64("CS_RINGBUF_BASE", 0x10, RW, doc="Ring buffer (GPU VA in the group's AS)"),
    R32("CS_RINGBUF_SIZE", 0x18, RW, doc="Ring buffer size (power of two)"),
    R64("CS_HEAP_START", 0x20, RW, doc="Tiler heap start"),
    R64("CS_HEAP_END", 0x28, RW, doc="Tiler heap end"),
    R64("CS_RINGBUF_INPUT", 0x30, RW, doc="MCU VA of the ring buffer input (insert/extract)"),
    R64("CS_RINGBUF_OUTPUT", 0x38, RW, doc="MCU VA of the ring buffer output (extract/active)"),
    R32("CS_INSTR_CONFIG", 0x40, RW, doc="Instrumentation configuration"),
    R32("CS_INSTRBUF_SIZE", 0x44, RW, doc="Instrumentation buffer size"),
    R64("CS_INSTRBUF_BASE", 0x48, RW, doc="Instrumentation buffer"),
    R64("CS_INSTRBUF_OFFSET_PTR", 0x50, RW, doc="Instrumentation buffer offset pointer"),
])

CS_OUTPUT = RegisterBlock("CS_OUTPUT", 0x0, size=0xD8, doc="CS output (FW-written)", members=[
    R32("CS_ACK", 0x00, RO, fields=_CS_REQ, doc="Acks of CS_REQ and FW events"),
    R64("CS_STATUS_CMD_PTR", 0x40, RO, doc="Current instruction pointer"),
    R32("CS_STATUS_WAIT", 0x48, RO, doc="What the stream waits for", fields=(
        F("SB_MASK", 15, 0), F("SB_SOURCE", 19, 16), F("SYNC_WAIT_COND", 27, 24, {0: "LE", 1: "GT"}),
        F("PROGRESS_WAIT", 28), F("PROTM_PEND", 29), F("SYNC_WAIT_SIZE_64B", 30), F("SYNC_WAIT", 31))),
    R32("CS_STATUS_REQ_RESOURCE", 0x4C, RO, doc="Resources requested", fields=flags({
        0: "COMPUTE", 1: "FRAGMENT", 2: "TILER", 3: "IDVS"})),
    R64("CS_STATUS_WAIT_SYNC_PTR", 0x50, RO, doc="Sync object waited on"),
    R32("CS_STATUS_WAIT_SYNC_VALUE", 0x58, RO, doc="Value waited for (low word)"),
    R32("CS_STATUS_SCOREBOARDS", 0x5C, RO, doc="Scoreboard slots in use"),
    R32("CS_STATUS_BLOCKED_REASON", 0x60, RO, doc="Why the stream is blocked", fields=(
        F("REASON", 3, 0, {0: "UNBLOCKED", 1: "SB_WAIT", 2: "PROGRESS_WAIT", 3: "SYNC_WAIT",
                           4: "DEFERRED", 5: "RESOURCE", 6: "FLUSH"}),)),
    R32("CS_STATUS_WAIT_SYNC_VALUE_HI", 0x64, RO, doc="Value waited for (high word)"),
    R32("CS_FAULT", 0x80, RO, fields=_EXCEPTION, doc="Recoverable fault"),
    R32("CS_FATAL", 0x84, RO, fields=_EXCEPTION, doc="Fatal error"),
    R64("CS_FAULT_INFO", 0x88, RO, doc="Fault address/info"),
    R64("CS_FATAL_INFO", 0x90, RO, doc="Fatal address/info"),
    R32("CS_HEAP_VT_START", 0xC0, RO, doc="Tiler heap: vertex/tiling started"),
    R32("CS_HEAP_VT_END", 0xC4, RO, doc="Tiler heap: vertex/tiling ended"),
    R32("CS_HEAP_FRAG_END", 0xCC, RO, doc="Tiler heap: fragment ended"),
    R64("CS_HEAP_ADDRESS", 0xD0, RO, doc="Tiler heap context address"),
])

# --- queue ring-buffer I/O pages ---------------------------------------------------------------

RINGBUF_INPUT = RegisterBlock("RINGBUF_INPUT", 0x0, size=0x10, doc="Queue ring buffer input page", members=[
    R64("RB_INSERT", 0x0, RW, doc="Monotonic byte offset where the host stops writing"),
    R64("RB_EXTRACT", 0x8, RW, doc="Host copy of the extract offset (set at CS programming)"),
])

RINGBUF_OUTPUT = RegisterBlock("RINGBUF_OUTPUT", 0x0, size=0xC, doc="Queue ring buffer output page", members=[
    R64("RB_OUTPUT_EXTRACT", 0x0, RO, doc="Monotonic byte offset consumed by the FW"),
    R32("RB_ACTIVE", 0x8, RO, doc="Stream active"),
])

IFACE_BLOCKS = (GLB_CONTROL, GLB_INPUT, GLB_OUTPUT, CSG_CONTROL, CSG_INPUT, CSG_OUTPUT,
                CS_CONTROL, CS_INPUT, CS_OUTPUT, RINGBUF_INPUT, RINGBUF_OUTPUT)


# --- where the blocks sit in the shared section --------------------------------------------

# Arm's strides between the per-slot input/output blocks; each must hold the block it strides
# (tests/unit/test_mali_regs_iface.py checks it against the block tables above).
CSG_INPUT_STRIDE, CSG_OUTPUT_STRIDE = 0x80, 0x40
CS_INPUT_STRIDE, CS_OUTPUT_STRIDE = 0x80, 0x100


def _page_up(n: int) -> int:
    return -(-n // MCU_PAGE_SIZE) * MCU_PAGE_SIZE


@dataclass(frozen=True)
class SharedLayout:
    """Where Arm's firmware puts the interface blocks in the shared section (MCU VAs).

    Page 0 holds GLB control, CSG i control at 0x1000 + i*group_stride with its CS j control
    at +0x40 + j*stream_stride.  Then one page of GLB input followed by all CSG inputs and
    all CS inputs, then the same for outputs, each run starting on a page.  For the defaults
    this gives Arm's numbers: GLB input 0x04002000, CSG inputs 0x04003000 + i*0x80, CS inputs
    0x04003400 + (i*8+j)*0x80, GLB output 0x04006000, CSG outputs 0x04007000 + i*0x40, CS
    outputs 0x04007200 + (i*8+j)*0x100.
    """

    group_num: int = 8
    stream_num: int = 8
    stream_stride: int = CS_CONTROL.size
    group_stride: int | None = None       # None: just enough for the CS controls (0xA0 for 8)
    base_va: int = SHARED_SECTION_VA
    size: int = SHARED_SECTION_SIZE

    def __post_init__(self):
        if self.group_stride is None:
            object.__setattr__(self, "group_stride",
                               CS_CONTROL_OFFSET + self.stream_num * self.stream_stride)
        if not (1 <= self.group_num <= 32 and 1 <= self.stream_num <= 32):
            raise ValueError(f"group_num {self.group_num} / stream_num {self.stream_num} out of 1..32")
        if self.stream_stride < CS_CONTROL.size:
            raise ValueError(f"stream_stride 0x{self.stream_stride:x} < CS control size")
        if self.group_stride < max(CSG_CONTROL.size,
                                   CS_CONTROL_OFFSET + self.stream_num * self.stream_stride):
            raise ValueError(f"group_stride 0x{self.group_stride:x} cannot hold the CSG control "
                             f"and {self.stream_num} CS controls")
        if self.end > self.size:
            raise ValueError(f"{self.group_num} groups x {self.stream_num} streams need 0x{self.end:x} "
                             f"bytes, more than the 0x{self.size:x}-byte shared section")

    # offsets in the section
    def csg_control(self, i: int) -> int:
        return CSG_CONTROL_OFFSET + i * self.group_stride

    def cs_control(self, i: int, j: int) -> int:
        return self.csg_control(i) + CS_CONTROL_OFFSET + j * self.stream_stride

    @property
    def control_size(self) -> int:
        """The control pages: what the image carries as section data (Arm: 0x2000)."""
        return _page_up(self.csg_control(self.group_num))

    @property
    def _streams(self) -> int:
        return self.group_num * self.stream_num

    @property
    def _glb_input(self) -> int:
        return self.control_size

    @property
    def _glb_output(self) -> int:
        inputs = self._glb_input + MCU_PAGE_SIZE + self.group_num * CSG_INPUT_STRIDE
        return _page_up(inputs + self._streams * CS_INPUT_STRIDE)

    @property
    def end(self) -> int:
        outputs = self._glb_output + MCU_PAGE_SIZE + self.group_num * CSG_OUTPUT_STRIDE
        return outputs + self._streams * CS_OUTPUT_STRIDE

    # MCU VAs of the input/output blocks
    @property
    def glb_input_va(self) -> int:
        return self.base_va + self._glb_input

    @property
    def glb_output_va(self) -> int:
        return self.base_va + self._glb_output

    def csg_input_va(self, i: int) -> int:
        return self.glb_input_va + MCU_PAGE_SIZE + i * CSG_INPUT_STRIDE

    def csg_output_va(self, i: int) -> int:
        return self.glb_output_va + MCU_PAGE_SIZE + i * CSG_OUTPUT_STRIDE

    def cs_input_va(self, i: int, j: int) -> int:
        return self.csg_input_va(self.group_num) + (i * self.stream_num + j) * CS_INPUT_STRIDE

    def cs_output_va(self, i: int, j: int) -> int:
        return self.csg_output_va(self.group_num) + (i * self.stream_num + j) * CS_OUTPUT_STRIDE


#: Arm's layout for 8 CSG slots of 8 streams (the G610 firmware's, and our image's).
ARM_LAYOUT = SharedLayout()
