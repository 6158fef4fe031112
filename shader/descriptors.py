"""What a compute dispatch reads from its descriptors, through the shared decoder
(mali_regs.descriptors, Mesa genxml v10 names), plus the meaning the shader core needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from mali_regs.descriptors import (
    COMPUTE_SIZE_WORKGROUP,
    DESCRIPTOR_TYPE,
    LOCAL_STORAGE,
    SHADER_PROGRAM,
    SHADER_STAGE,
    Descriptor,
)

DESCRIPTOR_TYPE_SHADER = DESCRIPTOR_TYPE["Shader"]
STAGE_COMPUTE = SHADER_STAGE["Compute"]
NO_WORKGROUP_MEM = 0x80000000


def shader_program(data: bytes) -> Descriptor:
    return SHADER_PROGRAM.decode(data)


@dataclass(frozen=True)
class LocalStorage:
    """The Local Storage descriptor's thread and workgroup storage, in bytes and counts."""
    desc: Descriptor

    @classmethod
    def unpack(cls, data: bytes) -> "LocalStorage":
        return cls(LOCAL_STORAGE.decode(data))

    @property
    def has_wls(self) -> bool:
        return self.desc.wls_instances != NO_WORKGROUP_MEM and self.desc.wls_size_scale > 0

    @property
    def wls_instances(self) -> int:
        return self.desc.wls_instances

    @property
    def wls_instance_size(self) -> int:  # WLS Size Scale = log2(size) + 1 (pan_emit_tls)
        return 1 << (self.desc.wls_size_scale - 1) if self.desc.wls_size_scale else 0

    @property
    def wls_base_pointer(self) -> int:
        return self.desc.wls_base_pointer

    @property
    def tls_base_pointer(self) -> int:  # v9+: the field holds the pointer >> 8 (pan_emit_tls)
        return self.desc.tls_base_pointer << 8

    @property
    def tls_thread_size(self) -> int:   # TLS Size = log2(ceil(bytes / 16)) (panvk)
        return 16 << self.desc.tls_size


def unpack_wg_size(v: int) -> tuple[int, int, int, bool]:
    """COMPUTE SR33 "Compute size workgroup"."""
    d = COMPUTE_SIZE_WORKGROUP.decode_int(v)
    return d.workgroup_size_x, d.workgroup_size_y, d.workgroup_size_z, d.allow_merging_workgroups
