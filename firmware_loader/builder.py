"""Our own free ``mali_csffw.bin``: a header, the shared interface section and build info.

No firmware code runs in the emulator, so the image only has to make panthor and Tyr map the
shared section at MCU VA 0x04000000 and copy our pre-laid-out GLB/CSG/CS control blocks into
it; a slow reset restores them from the image.  The layout copies Arm's images exactly
(csf-firmware-tables.md, tyr-and-firmware.md B.3), and the tests prove it against them.

    data = shared_section_template()          # Arm's control blocks, version 0 like Arm's
    blob = build_image(data)                  # passes panthor's and Tyr's checks
    (dest / "arm/mali/arch10.8/mali_csffw.bin").write_bytes(blob)
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata

from construct import Container, Int32ul, Int64ul, Padding, Struct

from mali_regs import csf_iface as I
from mali_regs.csf_iface import MCU_PAGE_SIZE, SHARED_SECTION_SIZE, SHARED_SECTION_VA, SharedLayout
from mali_regs.regmap import RegisterBlock

from .image import (
    BUILD_INFO_ENTRY,
    EHDR,
    EHDR_SIZE,
    FW_BINARY_MAGIC,
    GIT_SHA_PREFIX,
    HEADER,
    HEADER_SIZE,
    IFACE_ENTRY,
    IFACE_HEADER_SIZE,
    MAX_ENTRY_SIZE,
    CacheMode,
    EntryType,
    FirmwareError,
    IfaceFlag,
    parse,
)

__all__ = [
    "build_image", "shared_section_template", "decode_shared_section", "SharedLayout",
    "SectionSpec", "GLB_CONTROL_STRUCT", "CSG_CONTROL_STRUCT", "CS_CONTROL_STRUCT",
    "SHARED_FLAGS", "CODE_FLAGS", "SHARED_SECTION_SIZE", "CODE_VA", "DEFAULT_GIT_SHA",
]

#: Arm's shared section: RW, cached-coherent, host-visible, zero-filled past the data (0xC000001B).
SHARED_FLAGS = int(IfaceFlag.RD | IfaceFlag.WR | IfaceFlag.cache(CacheMode.CACHED_COHERENT)
                   | IfaceFlag.SHARED | IfaceFlag.ZERO)
#: Arm's code section at 0x800000: read-only, executable, cached (0xD).
CODE_FLAGS = int(IfaceFlag.RD | IfaceFlag.EX | IfaceFlag.cache(CacheMode.CACHED))
CODE_VA = 0x00800000


def _version() -> str:
    try:
        return metadata.version("mali-vdev")
    except metadata.PackageNotFoundError:
        return "0+unknown"


#: What panthor logs as "Firmware git sha: ..." for our image.
DEFAULT_GIT_SHA = f"mali-vdev-{_version()}"


# --- control blocks, declared from mali_regs so there is one set of names -------------------

def _control_struct(block: RegisterBlock, prefix: str) -> Struct:
    """A construct Struct of an interface block; fields named as panthor's structs
    (``GLB_INPUT_VA`` -> ``input_va``)."""
    fields, pos = [], 0
    for r in sorted(block.registers, key=lambda r: r.offset):
        if r.offset > pos:
            fields.append(Padding(r.offset - pos))
        fields.append(r.name.removeprefix(prefix).lower() / (Int64ul if r.width == 64 else Int32ul))
        pos = r.offset + r.width // 8
    return Struct(*fields)


GLB_CONTROL_STRUCT = _control_struct(I.GLB_CONTROL, "GLB_")
CSG_CONTROL_STRUCT = _control_struct(I.CSG_CONTROL, "CSG_")
CS_CONTROL_STRUCT = _control_struct(I.CS_CONTROL, "CS_")
#: The word after GLB control: 1 in Arm's arch10.x images, 2 in arch11.8/12.8/13.8.  panthor
#: and Tyr never read it; kbase lists GLB_PRFCNT_FEATURES after GLB_INSTR_FEATURES (its
#: offset is not verified).
GLB_PRFCNT_FEATURES_OFFSET = GLB_CONTROL_STRUCT.sizeof()

def shared_section_template(group_num: int = 8, stream_num: int = 8, *, version: int = 0,
                            features: int = 0, perfcnt_size: int = 0, instr_features: int = 0x71,
                            prfcnt_features: int = 1, csg_features: int = 0, suspend_size: int = 0,
                            protm_suspend_size: int = 0, cs_features: int = 0,
                            layout: SharedLayout | None = None) -> bytes:
    """The shared section's initial data: the control pages laid out as Arm's images do.

    The defaults reproduce Arm's arch10.x images (G610) byte for byte (arch11+ differ only
    in ``prfcnt_features=2``), including ``version=0``: the real
    MCU writes the version, CSG suspend sizes and CS features at boot, and so must the
    emulated one (panthor refuses version 0 after boot).  Pass them here to pre-fill.
    """
    lay = layout or SharedLayout(group_num, stream_num)
    buf = bytearray(lay.control_size)
    buf[0:GLB_CONTROL_STRUCT.sizeof()] = GLB_CONTROL_STRUCT.build(dict(
        version=version, features=features, input_va=lay.glb_input_va,
        output_va=lay.glb_output_va, group_num=lay.group_num, group_stride=lay.group_stride,
        perfcnt_size=perfcnt_size, instr_features=instr_features))
    buf[GLB_PRFCNT_FEATURES_OFFSET:GLB_PRFCNT_FEATURES_OFFSET + 4] = Int32ul.build(prfcnt_features)
    for i in range(lay.group_num):
        o = lay.csg_control(i)
        buf[o:o + CSG_CONTROL_STRUCT.sizeof()] = CSG_CONTROL_STRUCT.build(dict(
            features=csg_features, input_va=lay.csg_input_va(i), output_va=lay.csg_output_va(i),
            suspend_size=suspend_size, protm_suspend_size=protm_suspend_size,
            stream_num=lay.stream_num, stream_stride=lay.stream_stride))
        for j in range(lay.stream_num):
            o = lay.cs_control(i, j)
            buf[o:o + CS_CONTROL_STRUCT.sizeof()] = CS_CONTROL_STRUCT.build(dict(
                features=cs_features, input_va=lay.cs_input_va(i, j),
                output_va=lay.cs_output_va(i, j)))
    return bytes(buf)


def decode_shared_section(data: bytes) -> Container:
    """The GLB/CSG/CS control blocks in shared-section data (Arm's or ours).

    Returns ``glb`` (GLB control fields + ``prfcnt_features``) and ``groups``: per CSG its
    control fields and ``streams``, per CS its control fields.  Counts are bounded (32) and
    every block must lie inside ``data``, so garbage raises :class:`FirmwareError`.
    """
    def block(st: Struct, off: int, what: str) -> Container:
        if off + st.sizeof() > len(data):
            raise FirmwareError(f"{what} at 0x{off:x} is past the end of the shared data "
                                f"(0x{len(data):x} bytes)")
        c = st.parse(data[off:off + st.sizeof()])
        return Container({k: v for k, v in c.items() if not k.startswith("_")})

    glb = block(GLB_CONTROL_STRUCT, 0, "GLB control")
    glb.prfcnt_features = block(Struct("w" / Int32ul), GLB_PRFCNT_FEATURES_OFFSET, "GLB control").w
    if not 1 <= glb.group_num <= 32:
        raise FirmwareError(f"GLB control: group_num {glb.group_num} out of 1..32")
    groups = []
    for i in range(glb.group_num):
        base = I.CSG_CONTROL_OFFSET + i * glb.group_stride
        csg = block(CSG_CONTROL_STRUCT, base, f"CSG {i} control")
        if not 1 <= csg.stream_num <= 32:
            raise FirmwareError(f"CSG {i} control: stream_num {csg.stream_num} out of 1..32")
        csg.streams = [block(CS_CONTROL_STRUCT, base + I.CS_CONTROL_OFFSET + j * csg.stream_stride,
                             f"CS {i}.{j} control") for j in range(csg.stream_num)]
        groups.append(csg)
    return Container(glb=glb, groups=groups)


# --- the image -------------------------------------------------------------------------------

@dataclass(frozen=True)
class SectionSpec:
    """One IFACE section to put in an image."""

    va_start: int
    va_end: int
    flags: int
    data: bytes = b""
    name: bytes | str = b""


def _entry(etype: int, payload: bytes, optional: bool = False) -> bytes:
    size = EHDR_SIZE + len(payload)
    if size % 4 or size > MAX_ENTRY_SIZE:
        raise ValueError(f"entry of type {etype} would be {size} bytes "
                         f"(must be a multiple of 4, <= {MAX_ENTRY_SIZE})")
    ehdr = EHDR.build(dict(optional=optional, update=False, reserved=0, size=size, type=etype))
    return ehdr + payload


def _align(n: int, a: int) -> int:
    return -(-n // a) * a


def build_image(shared_data: bytes | None = None, *, shared_size: int = SHARED_SECTION_SIZE,
                code: bytes | None = None, code_va: int = CODE_VA,
                sections: tuple[SectionSpec, ...] | list[SectionSpec] = (),
                git_sha: str | None = DEFAULT_GIT_SHA, version_hash: int = 0, minor: int = 3,
                check: bool = True) -> bytes:
    """A complete ``mali_csffw.bin``.

    - ``shared_data``: initial contents of the shared section at 0x04000000 (``shared_size``
      bytes of VA, flags :data:`SHARED_FLAGS`); default :func:`shared_section_template`.
    - ``code``: optional bytes for a read-only executable section at ``code_va`` (Arm's code VA).
    - ``sections``: further IFACE sections, as given.
    - ``git_sha``: the BUILD_INFO_METADATA text after ``"git_sha: "``; None leaves it out.

    With ``check`` the result is parsed back and must pass both drivers' rules
    (:class:`FirmwareError` otherwise).
    """
    if shared_data is None:
        shared_data = shared_section_template()
    specs = []
    if code is not None:
        specs.append(SectionSpec(code_va, code_va + max(-(-len(code) // MCU_PAGE_SIZE) * MCU_PAGE_SIZE, MCU_PAGE_SIZE),
                                 CODE_FLAGS, bytes(code), b"code"))
    specs.extend(sections)
    specs.append(SectionSpec(SHARED_SECTION_VA, SHARED_SECTION_VA + shared_size, SHARED_FLAGS,
                             bytes(shared_data), b"shared"))

    def padded_name(n: bytes | str) -> bytes:
        n = n.encode() if isinstance(n, str) else bytes(n)
        return n.ljust(_align(len(n), 4), b"\0")

    # Sizes first: entries, then the build-info text right at header.size (as Arm does),
    # then the section data, 16-byte aligned.
    names = [padded_name(s.name) for s in specs]
    entries_end = HEADER_SIZE + sum(EHDR_SIZE + IFACE_HEADER_SIZE + len(n) for n in names)
    meta = GIT_SHA_PREFIX + git_sha.encode() + b"\0" if git_sha is not None else b""
    if meta:
        entries_end += EHDR_SIZE + BUILD_INFO_ENTRY.sizeof()
    pos = entries_end + len(meta)
    data_at = []
    for s in specs:
        pos = _align(pos, 16)
        data_at.append(pos)
        pos += len(s.data)

    out = bytearray(HEADER.build(dict(magic=FW_BINARY_MAGIC, minor=minor, major=0, padding1=0,
                                      version_hash=version_hash, padding2=0, size=entries_end)))
    for s, name, at in zip(specs, names, data_at):
        out += _entry(EntryType.IFACE, IFACE_ENTRY.build(dict(
            flags=s.flags, va_start=s.va_start, va_end=s.va_end,
            data_start=at, data_end=at + len(s.data), name=name)))
    if meta:
        out += _entry(EntryType.BUILD_INFO_METADATA, BUILD_INFO_ENTRY.build(dict(
            meta_start=entries_end, meta_size=len(meta))), optional=True)
    assert len(out) == entries_end
    out += meta
    for s, at in zip(specs, data_at):
        out += bytes(at - len(out)) + s.data
    blob = bytes(out)
    if check:
        img = parse(blob)
        img.validate("panthor")
        img.validate("tyr")
    return blob
