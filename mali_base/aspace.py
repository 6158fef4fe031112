"""An address space: GPU virtual addresses translated to guest memory, with a per-page TLB.

Every GPU-side access to guest memory goes through one of these, so every fault is raised
— and reported to the driver through `report_fault` — in one place. The MMU block owns the
sixteen address spaces and their registers; the MCU and the CS interpreter get the ones they
use and nothing else of the device.
"""

from __future__ import annotations

from typing import Callable

from vdev.dma import DmaSpace

from .faults import FaultInjector
from .pagetable import ACCESS_READ, ACCESS_WRITE, TRANSLATION_FAULT_0, AsConfig, MmuFault, Translation, walk


class AddressSpace:
    def __init__(self, index: int, report_fault: Callable[["AddressSpace", MmuFault], None],
                 faults: FaultInjector):
        self.index = index
        self.config = AsConfig()
        self.memory: DmaSpace | None = None  # guest RAM, once the client has mapped it
        self._report_fault = report_fault
        self._faults = faults
        self._tlb: dict[int, Translation] = {}
        self._words: dict[int, memoryview | None] = {}  # page -> its u64 words (instruction fetch)
        # page -> its u32 words, translated for reading / for writing: the u32/u64 accessors'
        # fast path (the MCU's interface blocks, sync objects, ring pointers). Bypassed while
        # an injection is armed, as every access must then meet the injector.
        self._r32: dict[int, memoryview] = {}
        self._w32: dict[int, memoryview] = {}
        self._armed = faults.injections if faults is not None else ()
        self.faults = 0
        self.stuck = False  # injected: AS_STATUS keeps reading AS_ACTIVE

    def invalidate(self) -> None:
        self._tlb.clear()
        words, self._words = self._words, {}
        r32, w32, self._r32, self._w32 = self._r32, self._w32, {}, {}
        for views in (words, r32, w32):
            for mv in views.values():
                if mv is not None:
                    mv.release()  # the mapping behind it may be about to close

    def words(self, va: int) -> memoryview | None:
        """The 4 KiB page holding `va` as 512 u64 words, read access (MmuFault as for a read),
        or None if that page is not one piece of guest RAM (then read() it piecewise).
        Cached with the page's translation: the view shows the memory as it is now, so only
        a translation change (what drops the TLB) can make it stale."""
        page = va >> 12
        mv = self._words.get(page, False)
        if mv is False or self._faults:
            mv = self.memory.words(self.translate(va, ACCESS_READ) - (va & 0xFFF), 4096)
            if not self._faults:  # armed injections are checked on every access
                self._words[page] = mv
        return mv

    def translate(self, va: int, access: int = ACCESS_READ) -> int:
        """Physical address of `va`, or raise MmuFault after reporting it to the driver."""
        if self._faults:
            self._injected_fault(va, access)
        page = va >> 12
        t = self._tlb.get(page)
        if t is None or (access == ACCESS_WRITE and not t.writable):
            try:
                t = walk(self.memory, self.config, va, access)
            except MmuFault as fault:
                self._report_fault(self, fault)
                raise
            if t.size == 4096:
                self._tlb[page] = t
            else:
                for p in range(t.va_page >> 12, min((t.va_page + t.size) >> 12, page + 512)):
                    self._tlb[p] = t
        return t.pa(va)

    def _injected_fault(self, va: int, access: int) -> None:
        faults = self._faults
        for inj in faults.find("mmu_fault"):
            start = inj.params.get("va", 0)
            if inj.params.get("as", self.index) == self.index and start <= va < start + inj.params.get("size", 4096):
                if faults.take("mmu_fault", **{"as": self.index, "va": start}):
                    fault = MmuFault(TRANSLATION_FAULT_0 + 3, va, access, "injected translation fault")
                    self._report_fault(self, fault)
                    raise fault

    def _chunks(self, va: int, size: int, access: int):
        while size > 0:
            n = min(size, 4096 - (va & 0xFFF))
            yield self.translate(va, access), n
            va += n
            size -= n

    def read(self, va: int, size: int, access: int = ACCESS_READ) -> bytes:
        dma = self.memory
        if (va & 0xFFF) + size <= 4096:  # within one page: one translation
            return dma.read(self.translate(va, access), size)
        return b"".join(dma.read(pa, n) for pa, n in self._chunks(va, size, access))

    def write(self, va: int, data: bytes) -> None:
        dma = self.memory
        chunks = list(self._chunks(va, len(data), ACCESS_WRITE))  # translate all before writing
        pos = 0
        for pa, n in chunks:
            dma.write(pa, data[pos:pos + n])
            pos += n

    # u32/u64 accessors: an aligned access within a page whose view is cached costs a dict
    # lookup and an index (a STATUS_UPDATE request makes about 140 of them); anything else
    # goes the general way, and caches the page's view for the next access.

    def _page32(self, va: int, write: bool) -> memoryview | None:
        """The u32 view of the page holding `va` after a translation for that access (which
        raises MmuFault as any access would), cached unless an injection is armed."""
        cache = self._w32 if write else self._r32
        mv = None if self._armed else cache.get(va >> 12)
        if mv is None:
            pa = self.translate(va, ACCESS_WRITE if write else ACCESS_READ) & ~0xFFF
            mv = self.memory.u32_page(pa, write)
            if mv is not None and not self._armed:
                cache[va >> 12] = mv
        return mv

    def read_u32(self, va: int) -> int:
        mv = self._r32.get(va >> 12)
        if mv is None or va & 3 or self._armed:
            mv = self._page32(va, False) if not va & 3 else None
            if mv is None:
                return int.from_bytes(self.read(va, 4), "little")
        return mv[(va >> 2) & 1023]

    def read_u64(self, va: int) -> int:
        mv = self._r32.get(va >> 12)
        if mv is None or va & 3 or va & 0xFFF > 0xFF8 or self._armed:
            mv = self._page32(va, False) if not va & 3 and va & 0xFFF <= 0xFF8 else None
            if mv is None:
                return int.from_bytes(self.read(va, 8), "little")
        i = (va >> 2) & 1023
        return mv[i] | mv[i + 1] << 32

    def write_u32(self, va: int, value: int) -> None:
        mv = self._w32.get(va >> 12)
        if mv is None or va & 3 or self._armed:
            mv = self._page32(va, True) if not va & 3 else None
            if mv is None:
                self.write(va, (value & 0xFFFFFFFF).to_bytes(4, "little"))
                return
        mv[(va >> 2) & 1023] = value & 0xFFFFFFFF

    def write_u64(self, va: int, value: int) -> None:
        mv = self._w32.get(va >> 12)
        if mv is None or va & 3 or va & 0xFFF > 0xFF8 or self._armed:
            mv = self._page32(va, True) if not va & 3 and va & 0xFFF <= 0xFF8 else None
            if mv is None:
                self.write(va, (value & (1 << 64) - 1).to_bytes(8, "little"))
                return
        i = (va >> 2) & 1023
        mv[i] = value & 0xFFFFFFFF
        mv[i + 1] = (value >> 32) & 0xFFFFFFFF
