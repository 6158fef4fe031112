"""The descriptor fields a compute dispatch reads (v10 genxml names, Mesa's v10.xml).

Kept in this one small place until the shared decoder (mali_regs/descriptors.py) exists.
"""

from __future__ import annotations

from dataclasses import dataclass

DESCRIPTOR_TYPE_SHADER = 8
STAGE_COMPUTE = 1
NO_WORKGROUP_MEM_LOG2 = 31  # MALI_LOCAL_STORAGE_NO_WORKGROUP_MEM (0x80000000) in the log2 field


def _field(words: list[int], word: int, start: int, size: int) -> int:
    return (words[word] >> start) & ((1 << size) - 1)


@dataclass(frozen=True)
class ShaderProgram:
    """"Shader Program" descriptor (8 words)."""
    type: int
    stage: int
    suppress_nan: bool
    flush_to_zero_mode: int     # 0 preserve, 1 DX11, 2 always, 3 abrupt
    suppress_inf: bool
    register_allocation: int    # 0: 64 per thread, 2: 32 per thread
    preload: int                # bit i: r(48 + i)
    binary: int

    @classmethod
    def unpack(cls, data: bytes) -> "ShaderProgram":
        w = [int.from_bytes(data[i:i + 4], "little") for i in range(0, 32, 4)]
        return cls(_field(w, 0, 0, 4), _field(w, 0, 4, 4), bool(_field(w, 0, 16, 1)), _field(w, 0, 17, 2),
                   bool(_field(w, 0, 19, 1)), _field(w, 0, 30, 2), _field(w, 1, 0, 16), w[2] | w[3] << 32)


@dataclass(frozen=True)
class LocalStorage:
    """"Local Storage" (thread storage) descriptor (8 words)."""
    tls_size: int               # per-thread stack: 16 << tls_size bytes
    wls_instances: int          # log2
    wls_size_base: int
    wls_size_scale: int         # log2(size) + 1, 0: none
    tls_base_pointer: int       # bytes (the field holds the pointer >> 8 on v9+)
    tls_address_mode: int
    wls_base_pointer: int

    @classmethod
    def unpack(cls, data: bytes) -> "LocalStorage":
        w = [int.from_bytes(data[i:i + 4], "little") for i in range(0, 32, 4)]
        tls = (w[2] | (w[3] & 0xFFFF) << 32) << 8
        return cls(_field(w, 0, 0, 5), _field(w, 1, 0, 5), _field(w, 1, 5, 2), _field(w, 1, 8, 5), tls,
                   _field(w, 3, 28, 4), w[4] | w[5] << 32)

    @property
    def has_wls(self) -> bool:
        return self.wls_instances != NO_WORKGROUP_MEM_LOG2 and self.wls_size_scale > 0

    @property
    def wls_instance_size(self) -> int:
        return 1 << (self.wls_size_scale - 1) if self.wls_size_scale else 0


def unpack_wg_size(v: int) -> tuple[int, int, int, bool]:
    """COMPUTE SR33 "Compute size workgroup": X/Y/Z minus one in 10 bits each, bit 31 merging."""
    return (v & 0x3FF) + 1, (v >> 10 & 0x3FF) + 1, (v >> 20 & 0x3FF) + 1, bool(v >> 31)
