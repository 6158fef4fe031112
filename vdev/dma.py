"""Guest memory as the client's DMA_MAPs: mmapped once, reached only through bounds checks.

A map with a file descriptor is mmapped MAP_SHARED and exposed as a numpy uint8 array; a map
without one is recorded (QEMU sends them for ROMs and must not be refused) but is not
accessible: message-based DMA (DMA_READ/WRITE) deadlocks against QEMU's vCPU thread and
its layout disagrees with the spec, so we never use it. Every access names an IOVA range
and is refused unless a single readable/writable mapping covers it entirely, or a run
of adjacent mappings does.
"""

from __future__ import annotations

import bisect
import errno
import fcntl
import logging
import mmap
import os
import stat
import threading
from dataclasses import dataclass

import numpy as np

from . import protocol as P

log = logging.getLogger("vdev.dma")

# fcntl has them on Linux since Python 3.8; the numbers are the kernel's.
F_GET_SEALS = getattr(fcntl, "F_GET_SEALS", 1034)
F_SEAL_SHRINK = getattr(fcntl, "F_SEAL_SHRINK", 0x0002)
F_ADD_SEALS = getattr(fcntl, "F_ADD_SEALS", 1033)
F_SEAL_GROW = getattr(fcntl, "F_SEAL_GROW", 0x0004)


class DmaError(Exception):
    """An access outside what the client mapped (or with the wrong permission)."""

    def __init__(self, iova: int, size: int, why: str):
        super().__init__(f"DMA {why} at iova 0x{iova:x} size 0x{size:x}")
        self.iova, self.size, self.why = iova, size, why


class DmaMapError(Exception):
    def __init__(self, errno_: int, msg: str):
        super().__init__(msg)
        self.errno = errno_


@dataclass
class DmaMapping:
    iova: int
    size: int
    flags: int
    fd_offset: int
    mm: mmap.mmap | None
    array: np.ndarray | None  # uint8 view of exactly [iova, iova+size)
    mm_offset: int = 0        # where iova lies in `mm` (the mmap starts at a page boundary)
    has_fd: bool = False      # kept after unmap releases `mm`, for the log line

    @property
    def end(self) -> int:
        return self.iova + self.size

    @property
    def readable(self) -> bool:
        return bool(self.flags & P.DMA_FLAG_READ)

    @property
    def writable(self) -> bool:
        return bool(self.flags & P.DMA_FLAG_WRITE)

    def describe(self) -> str:
        prot = ("r" if self.readable else "-") + ("w" if self.writable else "-")
        kind = ("mmapped" if self.array is not None else "unmapped") if self.has_fd else "no fd"
        return f"[0x{self.iova:x}, 0x{self.end:x}) {prot} {kind}"


class DmaSpace:
    """The set of DMA mappings of one connection, sorted by IOVA."""

    def __init__(self, max_maps: int = 65535):
        self.max_maps = max_maps
        self._maps: list[DmaMapping] = []
        self._starts: list[int] = []
        self._lock = threading.Lock()
        self.generation = 0  # bumped on every change, so caches of translations can notice
        self.listeners: list = []  # called as listener(iova, size, flags); flags None on unmap

    def __len__(self) -> int:
        return len(self._maps)

    def mappings(self) -> list[DmaMapping]:
        return list(self._maps)

    # -- map / unmap ---------------------------------------------------------------------

    def map(self, iova: int, size: int, flags: int, fd: int | None = None, fd_offset: int = 0) -> DmaMapping:
        """Add a mapping. Takes ownership of `fd` (closed here after mmap)."""
        try:
            if size == 0 or iova + size > 1 << 64 or fd_offset + size > 1 << 64:
                raise DmaMapError(errno.EINVAL, f"bad range iova 0x{iova:x} size 0x{size:x}")
            if flags & ~(P.DMA_FLAG_READ | P.DMA_FLAG_WRITE):
                raise DmaMapError(errno.EINVAL, f"unknown DMA_MAP flags 0x{flags:x}")
            with self._lock:
                if len(self._maps) >= self.max_maps:
                    raise DmaMapError(errno.ENOSPC, "too many DMA mappings")
                i = bisect.bisect_right(self._starts, iova)
                prev = self._maps[i - 1] if i else None
                nxt = self._maps[i] if i < len(self._maps) else None
                if (prev and prev.end > iova) or (nxt and nxt.iova < iova + size):
                    raise DmaMapError(errno.EEXIST, f"iova [0x{iova:x}, 0x{iova + size:x}) overlaps an existing map")
                mm = arr = None
                delta = 0
                if fd is not None:
                    mm, arr, delta = _mmap_fd(fd, fd_offset, size, flags)
                m = DmaMapping(iova, size, flags, fd_offset, mm, arr, delta, fd is not None)
                self._maps.insert(i, m)
                self._starts.insert(i, iova)
                self.generation += 1
            for listener in self.listeners:
                listener(iova, size, flags)
            return m
        finally:
            if fd is not None:
                os.close(fd)

    def unmap(self, iova: int, size: int) -> DmaMapping:
        with self._lock:
            i = bisect.bisect_left(self._starts, iova)
            if i == len(self._maps) or self._maps[i].iova != iova or self._maps[i].size != size:
                raise DmaMapError(errno.ENOENT, f"no DMA map at iova 0x{iova:x} size 0x{size:x}")
            m = self._maps.pop(i)
            self._starts.pop(i)
            self.generation += 1
        # Listeners first: a cache holding a view of this memory drops it before the mmap closes.
        for listener in self.listeners:
            listener(m.iova, m.size, None)
        _release(m)
        return m

    def unmap_all(self) -> int:
        with self._lock:
            maps, self._maps, self._starts = self._maps, [], []
            self.generation += 1
        for m in maps:
            for listener in self.listeners:
                listener(m.iova, m.size, None)
            _release(m)
        return len(maps)

    # -- access --------------------------------------------------------------------------

    def _find(self, iova: int) -> DmaMapping | None:
        i = bisect.bisect_right(self._starts, iova) - 1
        if i >= 0:
            m = self._maps[i]
            if iova < m.end:
                return m
        return None

    def _pieces(self, iova: int, size: int, write: bool):
        """Yield (array, start, length) covering [iova, iova+size) or raise DmaError."""
        if size < 0 or iova < 0 or iova + size > 1 << 64:
            raise DmaError(iova, size, "invalid range")
        addr, left = iova, size
        while left > 0:
            m = self._find(addr)
            if m is None:
                raise DmaError(iova, size, "outside every mapping")
            if m.array is None:
                raise DmaError(iova, size, "in a mapping without a file descriptor")
            if write and not m.writable:
                raise DmaError(iova, size, "write to a read-only mapping")
            if not write and not m.readable:
                raise DmaError(iova, size, "read from a write-only mapping")
            n = min(left, m.end - addr)
            yield m.array, addr - m.iova, n
            addr += n
            left -= n

    def words(self, iova: int, size: int) -> memoryview | None:
        """[iova, iova+size) as little-endian u64 words (a readable view of one mapping), or
        None if one mapping does not cover it. The view aliases guest memory, so it always
        shows what is there now; a holder must drop it when a listener reports a change."""
        m = self._find(iova)
        if m is None or m.array is None or not m.readable or iova + size > m.end or size & 7:
            return None
        start = iova - m.iova
        return memoryview(m.array[start:start + size]).cast("Q")

    def u32_page(self, iova: int, write: bool = False) -> memoryview | None:
        """The 4 KiB page at `iova` (page-aligned) as little-endian u32 words, a view that
        aliases one mapping (writable if `write`), or None if one mapping does not cover it
        with that access. A holder must drop it when a listener reports a change."""
        m = self._find(iova)
        if (m is None or m.array is None or iova + 4096 > m.end or not m.readable
                or write and not m.writable):
            return None
        start = iova - m.iova
        return memoryview(m.array[start:start + 4096]).cast("I")

    def view(self, iova: int, size: int, write: bool = False) -> np.ndarray:
        """A uint8 array aliasing guest memory [iova, iova+size); must lie in one mapping."""
        pieces = list(self._pieces(iova, size, write))
        if len(pieces) != 1:
            if not pieces and size == 0:
                return np.empty(0, np.uint8)
            raise DmaError(iova, size, "spans more than one mapping")
        arr, start, n = pieces[0]
        return arr[start:start + n]

    def read(self, iova: int, size: int) -> bytes:
        m = self._find(iova)
        if m is not None and m.mm is not None and m.readable and iova + size <= m.end and size >= 0:
            start = m.mm_offset + iova - m.iova  # the common case: one mapping covers it
            return m.mm[start:start + size]      # an mmap slice: no numpy objects on the way
        return b"".join(arr[s:s + n].tobytes() for arr, s, n in self._pieces(iova, size, False))

    def write(self, iova: int, data) -> None:
        m = self._find(iova)
        if m is not None and m.mm is not None and m.writable and type(data) is bytes and iova + len(data) <= m.end:
            start = m.mm_offset + iova - m.iova  # the common case, as in read()
            m.mm[start:start + len(data)] = data
            return
        src = np.frombuffer(memoryview(data).cast("B"), np.uint8)
        pieces = list(self._pieces(iova, len(src), True))  # check all before writing any
        pos = 0
        for arr, s, n in pieces:
            arr[s:s + n] = src[pos:pos + n]
            pos += n

    def read_u32(self, iova: int) -> int:
        return int.from_bytes(self.read(iova, 4), "little")

    def write_u32(self, iova: int, value: int) -> None:
        self.write(iova, (value & 0xFFFFFFFF).to_bytes(4, "little"))

    def read_u64(self, iova: int) -> int:
        return int.from_bytes(self.read(iova, 8), "little")

    def write_u64(self, iova: int, value: int) -> None:
        self.write(iova, (value & (1 << 64) - 1).to_bytes(8, "little"))


def sealed_memfd(name: str, size: int) -> int:
    """A memfd of `size` bytes sealed against resizing, as QEMU's memory-backend-memfd makes
    guest RAM: the only kind of fd DMA_MAP accepts (for clients and tests)."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        os.ftruncate(fd, size)
        fcntl.fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _check_cannot_shrink(fd: int, st: os.stat_result, fd_offset: int, size: int) -> None:
    """Refuse a file that may shrink under the mapping: touching a page past a truncated end
    is SIGBUS, which kills the whole server. Only a memfd sealed with F_SEAL_SHRINK (what
    QEMU's memory-backend-memfd sends, seal=on by default) is sure to keep its size; a plain
    file (memory-backend-file) can be truncated by anyone who may write it, so it is refused."""
    if not stat.S_ISREG(st.st_mode):
        raise DmaMapError(errno.EINVAL, f"DMA_MAP: the fd is not a regular file or memfd "
                                        f"(mode 0o{st.st_mode:o}); only sealed memfds are mapped")
    try:
        seals = fcntl.fcntl(fd, F_GET_SEALS)
    except OSError:
        seals = None  # a file system without seals (ext4, ...): it can always shrink
    if seals is None or not seals & F_SEAL_SHRINK:
        what = ("memfd is not sealed against shrinking (F_SEAL_SHRINK); QEMU's memory-backend-memfd "
                "seals its memfds" if seals is not None else
                "the fd is a file that can be truncated under the map (memory-backend-file); "
                "use memory-backend-memfd, whose memfds are sealed against shrinking")
        log.error("DMA_MAP: %s", what)
        raise DmaMapError(errno.EPERM, f"DMA_MAP: {what}")
    if fd_offset > st.st_size or size > st.st_size - fd_offset:
        raise DmaMapError(errno.EINVAL, f"DMA_MAP: file offset 0x{fd_offset:x} size 0x{size:x} "
                                        f"past the end of the file (0x{st.st_size:x} bytes)")


def _mmap_fd(fd: int, fd_offset: int, size: int, flags: int):
    st = os.fstat(fd)
    _check_cannot_shrink(fd, st, fd_offset, size)
    # The fd may be hugetlbfs: mmap from the offset rounded down to its page size.
    page = max(mmap.PAGESIZE, st.st_blksize)
    base = fd_offset - fd_offset % page
    delta = fd_offset - base
    length = size + delta
    prot = mmap.PROT_READ | (mmap.PROT_WRITE if flags & P.DMA_FLAG_WRITE else 0)
    try:
        mm = mmap.mmap(fd, length, mmap.MAP_SHARED, prot, offset=base)
    except (OSError, ValueError, OverflowError) as e:
        raise DmaMapError(errno.EINVAL, f"cannot mmap fd at offset 0x{fd_offset:x} size 0x{size:x}: {e}") from e
    # Python's mmap refuses a range past the end of a regular file (ValueError above).
    # A read-only mmap gives a read-only array, so a stray write raises instead of faulting.
    return mm, np.frombuffer(mm, np.uint8, size, delta), delta



def _release(m: DmaMapping) -> None:
    arr, mm = m.array, m.mm
    m.array = m.mm = None
    del arr
    if mm is not None:
        try:
            mm.close()
        except BufferError:
            # A view is still alive somewhere: the mapping goes when the last view does.
            log.warning("DMA map %s unmapped while a view of it is still referenced", m.describe())
