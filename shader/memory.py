"""Lane-parallel memory accesses through a group's GPU address space.

Each access is a vector of per-lane addresses; lanes are grouped by page, each page is
translated once (so a bad address is a real MMU fault, reported by the address space) and
read or written through a numpy view of guest memory. Lanes whose access crosses a page
boundary take the byte-wise path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mali_base.pagetable import ACCESS_READ, ACCESS_WRITE

if TYPE_CHECKING:
    from mali_base.aspace import AddressSpace


class LaneMemory:
    def __init__(self, aspace: "AddressSpace"):
        self.aspace = aspace
        self._pages: dict[tuple[int, bool], np.ndarray] = {}  # (page, write) -> view, this step only

    def forget(self) -> None:
        """Drop the page views (between steps: the translation may change meanwhile)."""
        self._pages.clear()

    def _page(self, page: int, write: bool) -> np.ndarray:
        v = self._pages.get((page, write))
        if v is None:
            va = page << 12
            pa = self.aspace.translate(va, ACCESS_WRITE if write else ACCESS_READ)
            v = self.aspace.memory.view(pa, 4096, write)
            self._pages[(page, write)] = v
        return v

    def _groups(self, addr: np.ndarray, nbytes: int):
        """(lane indices, offsets in page, page) per page; lanes crossing a page come last, page -1."""
        off = (addr & 0xFFF).astype(np.int64)
        cross = off + nbytes > 4096
        pages = addr >> np.uint64(12)
        if not cross.any():
            if pages.size and (pages == pages[0]).all():
                yield np.arange(addr.size), off, int(pages[0])
                return
        else:
            yield np.nonzero(cross)[0], None, -1
        ok = ~cross
        for p in np.unique(pages[ok]):
            idx = np.nonzero(ok & (pages == p))[0]
            yield idx, off[idx], int(p)

    def load(self, addr: np.ndarray, nbytes: int) -> np.ndarray:
        """Bytes at each lane's address: (lanes, nbytes) uint8."""
        out = np.empty((addr.size, nbytes), np.uint8)
        cols = np.arange(nbytes)
        for idx, off, page in self._groups(addr, nbytes):
            if page < 0:
                for i in idx:
                    out[i] = np.frombuffer(self.aspace.read(int(addr[i]), nbytes, ACCESS_READ), np.uint8)
            else:
                out[idx] = self._page(page, False)[off[:, None] + cols]
        return out

    def store(self, addr: np.ndarray, data: np.ndarray) -> None:
        """Write data[(lanes, nbytes)] at each lane's address, in lane order (the last lane wins)."""
        nbytes = data.shape[1]
        cols = np.arange(nbytes)
        groups = list(self._groups(addr, nbytes))
        for idx, off, page in groups:  # translate every page before writing any (a fault writes nothing)
            if page >= 0:
                self._page(page, True)
            else:
                for i in idx:
                    for va in (int(addr[i]), int(addr[i]) + nbytes - 1):
                        self.aspace.translate(va, ACCESS_WRITE)
        for idx, off, page in groups:
            if page < 0:
                for i in idx:
                    self.aspace.write(int(addr[i]), data[i].tobytes())
            else:
                self._page(page, True)[off[:, None] + cols] = data[idx]

    def atomic(self, addr: np.ndarray, nbytes: int, op, operand: np.ndarray) -> np.ndarray:
        """Read-modify-write each lane's address in lane order; returns the old values.
        `op(old, operand) -> new` on Python ints."""
        old = np.empty(addr.size, np.uint64)
        mask = (1 << (8 * nbytes)) - 1
        for i in range(addr.size):
            va = int(addr[i])
            if va % nbytes:
                raise MisalignedAtomic(va)
            self.aspace.translate(va, ACCESS_WRITE)
            v = int.from_bytes(self.aspace.read(va, nbytes), "little")
            old[i] = v
            self.aspace.write(va, (op(v, int(operand[i])) & mask).to_bytes(nbytes, "little"))
        return old


class MisalignedAtomic(Exception):
    def __init__(self, va: int):
        super().__init__(f"atomic at unaligned address 0x{va:x}")
        self.va = va
