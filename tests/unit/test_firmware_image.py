"""firmware_loader.image (parser, driver rules) and firmware_loader.builder (our image).

The real-image tests read Debian's firmware-misc-nonfree images from the set-up cache and
check them against shared/docs/csf-firmware-tables.md; they skip when set-up has not run.
"""

from __future__ import annotations

import os
import random
import struct
import threading
from pathlib import Path

import pytest

from firmware_loader.builder import (
    CODE_FLAGS,
    SHARED_FLAGS,
    SectionSpec,
    SharedLayout,
    build_image,
    decode_shared_section,
    shared_section_template,
)
from firmware_loader.image import EHDR, HEADER, IFACE_ENTRY, SHARED_SECTION_VA, CacheMode, FirmwareError, FirmwareImage, IfaceFlag, load, parse

MAGIC = 0xC3F13A6E


# --- helpers ----------------------------------------------------------------------------------

def ehdr(etype, size, optional=False, update=False):
    return EHDR.build(dict(optional=optional, update=update, reserved=0, size=size, type=etype))


def entry(etype, payload=b"", optional=False):
    return ehdr(etype, 4 + len(payload), optional) + payload


def iface(flags, va_start, va_end, data_start=0, data_end=0, name=b""):
    return entry(0, IFACE_ENTRY.build(dict(flags=flags, va_start=va_start, va_end=va_end,
                                           data_start=data_start, data_end=data_end, name=name)))


SHARED_IFACE = iface(SHARED_FLAGS, SHARED_SECTION_VA, SHARED_SECTION_VA + 0x10000)


def image(*entries, tail=b"", size=None, magic=MAGIC, major=0, minor=3, padding1=0, padding2=0):
    body = b"".join(entries)
    hdr = HEADER.build(dict(magic=magic, minor=minor, major=major, padding1=padding1,
                            version_hash=0x1234, padding2=padding2,
                            size=20 + len(body) if size is None else size))
    return hdr + body + tail


def parse_with_timeout(blob, timeout=5.0):
    """parse() in a thread, so a parser that loops forever fails the test instead of hanging it."""
    result = {}

    def run():
        try:
            result["image"] = parse(blob)
        except BaseException as e:  # noqa: BLE001 - handed back to the test
            result["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "parse() did not return: endless entry loop"
    if "error" in result:
        raise result["error"]
    return result["image"]


def errors(blob, driver):
    return parse(blob).check(driver)[0]


# --- builder round trip ----------------------------------------------------------------------

def test_build_default_round_trips_and_passes_both_drivers():
    blob = build_image()
    img = parse(blob)
    assert img.raw == blob
    assert (img.header.magic, img.header.major, img.header.minor) == (MAGIC, 0, 3)
    assert img.header.padding1 == img.header.padding2 == 0
    assert [e.type_name for e in img.entries] == ["IFACE", "BUILD_INFO_METADATA"]
    assert img.entries[1].optional and not img.entries[0].optional
    sh = img.shared_section
    assert sh is img.sections[0]
    assert (sh.va_start, sh.va_end, sh.flags) == (0x04000000, 0x04010000, 0xC000001B)
    assert (sh.rd, sh.wr, sh.ex, sh.prot, sh.is_shared, sh.zero) == (True, True, False, False, True, True)
    assert sh.cache_mode is CacheMode.CACHED_COHERENT
    assert sh.describe_flags() == "RW-+CACHED_COHERENT+SHARED+ZERO"
    assert sh.map_flags == {"NOEXEC", "UNCACHED"}
    assert sh.data == shared_section_template()
    assert sh.contents() == shared_section_template().ljust(0x10000, b"\0")
    assert sh.name == "shared"
    assert img.build_info.raw == b"git_sha: " + img.git_sha.encode() + b"\0"
    assert img.git_sha.startswith("mali-vdev-")
    assert img.validate("panthor") == [] and img.validate("tyr") == []


def test_build_with_code_extra_sections_and_options():
    code = bytes(range(256)) * 5
    extra = SectionSpec(0x01000000, 0x01002000, int(IfaceFlag.RD | IfaceFlag.WR | IfaceFlag.cache(1)),
                        b"\xAA" * 0x10, "heap")
    shared = shared_section_template(4, 8, version=0x01010000, suspend_size=0x4000, cs_features=0x7085F)
    blob = build_image(shared, code=code, sections=[extra], git_sha="deadbeef",
                       version_hash=0xABCD, minor=7)
    img = parse(blob)
    assert (img.version_hash, img.header.minor, img.git_sha) == (0xABCD, 7, "deadbeef")
    c, e, s = img.sections
    assert (c.va_start, c.va_end, c.flags, c.data, c.name) == (0x800000, 0x801000, CODE_FLAGS, code, "code")
    assert c.describe_flags() == "R-X+CACHED" and c.map_flags == {"READONLY"}
    assert (e.va_start, e.va_end, e.data, e.name) == (0x01000000, 0x01002000, b"\xAA" * 0x10, "heap")
    assert s.data == shared and img.shared_section is s
    d = decode_shared_section(s.data)
    assert d.glb.version == 0x01010000 and d.glb.group_num == 4
    assert all(g.suspend_size == 0x4000 for g in d.groups)
    assert {st.features for g in d.groups for st in g.streams} == {0x7085F}
    assert img.section_at(0x800123) is c and img.section_at(0x04000000 + 0xFFFF) is s
    assert img.section_at(0x801000) is None
    for driver in ("panthor", "tyr"):
        assert img.validate(driver) == []


def test_build_without_build_info_and_name_limits():
    img = parse(build_image(git_sha=None))
    assert img.build_info is None and img.git_sha is None
    assert [e.type_name for e in img.entries] == ["IFACE"]
    with pytest.raises(ValueError, match="multiple of 4"):
        build_image(sections=[SectionSpec(0, 0x1000, CODE_FLAGS, name="x" * 240)])


def test_build_refuses_images_the_drivers_would_refuse():
    with pytest.raises(FirmwareError, match="overlaps"):
        build_image(sections=[SectionSpec(0x04008000, 0x04009000, CODE_FLAGS)])
    with pytest.raises(FirmwareError, match="do not fit"):
        build_image(bytes(0x20000))
    # check=False hands back the bytes, for tests of the drivers' rules
    assert parse(build_image(bytes(0x20000), check=False)).check("tyr")[0]


# --- malformed input: always FirmwareError, never a hang -----------------------------------

GOOD = image(SHARED_IFACE)

MALFORMED = {
    "empty file": b"",
    "truncated header": GOOD[:10],
    "bad magic": image(SHARED_IFACE, magic=0xDEADBEEF),
    "size field past EOF": image(SHARED_IFACE, size=0x1000),
    "truncated entry area": GOOD[:-4],
    "zero-size entry": image(ehdr(1, 0, optional=True), SHARED_IFACE),
    "zero-size entry at the end": image(SHARED_IFACE, ehdr(0, 0)),
    "entry size below its header": image(ehdr(1, 2, optional=True) + b"\0" * 4, SHARED_IFACE),
    "misaligned entry size": image(ehdr(1, 6, optional=True) + b"\0\0", SHARED_IFACE),
    "entry past the entry area": image(SHARED_IFACE, size=20 + len(SHARED_IFACE) - 4),
    "entry header past the entry area": image(SHARED_IFACE, tail=b"\0\0", size=20 + len(SHARED_IFACE) + 2),
    "IFACE entry too short": image(entry(0, b"\0" * 12), SHARED_IFACE),
    "data range past EOF": image(iface(SHARED_FLAGS, SHARED_SECTION_VA, SHARED_SECTION_VA + 0x10000, 44, 0x2000)),
    "data range backwards": image(iface(SHARED_FLAGS, SHARED_SECTION_VA, SHARED_SECTION_VA + 0x10000, 40, 20)),
    "data_end huge": image(iface(SHARED_FLAGS, SHARED_SECTION_VA, SHARED_SECTION_VA + 0x10000, 0, 0xFFFFFFFF)),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_input_raises_firmware_error(case):
    with pytest.raises(FirmwareError) as ei:
        parse_with_timeout(MALFORMED[case])
    assert str(ei.value) and ei.value.errors == [str(ei.value)]


def test_malformed_messages_say_what_is_wrong():
    def msg(case):
        with pytest.raises(FirmwareError) as ei:
            parse(MALFORMED[case])
        return str(ei.value)

    assert "truncated" in msg("truncated header")
    assert "magic" in msg("bad magic")
    assert "past the end of the file" in msg("size field past EOF")
    assert "never advance" in msg("zero-size entry")
    assert "multiple of 4" in msg("misaligned entry size")
    assert "entry 0" in msg("entry past the entry area")
    assert "data range" in msg("data range past EOF") and "past" in msg("data range past EOF")
    assert "ends before it starts" in msg("data range backwards")


def test_truncations_and_mutations_never_escape_as_other_exceptions():
    """Every prefix of a real-shaped image, and random byte flips in its entry area: the parser
    and the rule checker either succeed or raise FirmwareError."""
    blob = build_image(code=b"\x01" * 64, sections=[SectionSpec(0x10000, 0x20000, 0x8000000B, b"x" * 8)])
    hdr_size = struct.unpack_from("<I", blob, 16)[0]
    cases = [blob[:n] for n in range(len(blob) + 1)]
    rng = random.Random(1234)
    for _ in range(3000):
        b = bytearray(blob)
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(hdr_size)] = rng.randrange(256)
        cases.append(bytes(b))
    for b in cases:
        try:
            img = parse(b)
        except FirmwareError:
            continue
        for driver in ("panthor", "tyr"):
            try:
                img.validate(driver)
            except FirmwareError:
                pass
        if img.shared_section is not None:
            try:
                decode_shared_section(img.shared_section.data)
            except FirmwareError:
                pass


# --- the drivers' rules ----------------------------------------------------------------------

def test_unknown_flag_bits_are_named():
    blob = image(iface(SHARED_FLAGS | 0x100, SHARED_SECTION_VA, SHARED_SECTION_VA + 0x10000))
    img = parse(blob)
    assert img.sections[0].unknown_flags == 0x100
    assert "UNKNOWN(0x100)" in img.sections[0].describe_flags()
    for driver in ("panthor", "tyr"):
        with pytest.raises(FirmwareError, match=r"IFACE entry 0 has unknown flag bits 0x100") as ei:
            img.validate(driver)
        assert len(ei.value.errors) >= 1


@pytest.mark.parametrize("blob, both", [
    (image(iface(0x1B, SHARED_SECTION_VA, SHARED_SECTION_VA + 0x10000)), "must be SHARED"),
    (image(iface(SHARED_FLAGS, SHARED_SECTION_VA, SHARED_SECTION_VA + 0x10800)), "aligned"),
    (image(iface(SHARED_FLAGS, SHARED_SECTION_VA + 0x2000, SHARED_SECTION_VA + 0x1000), SHARED_IFACE),
     "ends before it starts"),
    (image(SHARED_IFACE, entry(5, b"\0" * 4)), "not OPTIONAL"),
    (image(SHARED_IFACE, iface(CODE_FLAGS, 0x04008000, 0x04018000)), "overlaps"),
    (image(SHARED_IFACE, major=1), "header version"),
    (image(iface(CODE_FLAGS, 0, 0x1000, 44, 44 + 0x1001), tail=bytes(0x1001)), "do not fit"),
], ids=["shared-not-SHARED", "va-unaligned", "va-backwards", "unknown-type", "overlap", "major",
        "data-bigger-than-va"])
def test_rules_both_drivers_enforce(blob, both):
    for driver in ("panthor", "tyr"):
        errs = errors(blob, driver)
        assert any(both in e for e in errs), (driver, errs)


def test_rules_where_the_drivers_differ():
    code_only = image(iface(CODE_FLAGS, 0x800000, 0x801000))
    assert any("Shared interface region not found" in e for e in errors(code_only, "panthor"))
    assert errors(code_only, "tyr") == []

    prot_only = image(iface(0x2B, 0x3000000, 0x3040000), iface(CODE_FLAGS, 0x10000, 0x10000))
    assert any("no loadable sections" in e for e in errors(prot_only, "tyr"))

    padded = image(SHARED_IFACE, padding1=1)
    assert errors(padded, "panthor") == []
    assert any("padding" in e for e in errors(padded, "tyr"))

    short_info = image(SHARED_IFACE, entry(6, b"\0" * 4, optional=True))
    assert any("BUILD_INFO" in e for e in errors(short_info, "panthor"))
    assert errors(short_info, "tyr") == []
    assert parse(short_info).build_info is None


def test_warnings_prot_sections_and_build_info():
    tail = b"git_sha: abc"   # no NUL
    info = entry(6, struct.pack("<II", 20 + 24 + 24 + 12, len(tail)), optional=True)
    blob = image(SHARED_IFACE, iface(0x2B, 0x3000000, 0x3040000), info, tail=tail)
    img = parse(blob)
    assert img.git_sha == "abc"
    w = img.validate("panthor")
    assert any("protected-mode" in x for x in w) and any("NUL" in x for x in w)
    assert [x for x in img.validate("tyr") if "NUL" in x] == []   # Tyr skips BUILD_INFO

    far = entry(6, struct.pack("<II", 0x10000, 8), optional=True)
    img = parse(image(SHARED_IFACE, far))
    assert img.build_info is not None and not img.build_info.in_file
    assert any("outside the file" in x for x in img.validate("panthor"))

    with pytest.raises(ValueError):
        img.validate("kbase")


def test_optional_unknown_types_are_kept_raw():
    blob = image(SHARED_IFACE, entry(9, b"\1\0\0\0\x58\xde\x02\x02", optional=True),
                 entry(1, b"WA_CFG0\0", optional=True))
    img = parse(blob)
    e9, e1 = img.entries[1:]
    assert (e9.type_name, e9.optional, e9.payload, e9.decoded) == ("kbase:CORE_DUMP", True, b"\1\0\0\0\x58\xde\x02\x02", None)
    assert e1.type_name == "CONFIG" and e1.payload == b"WA_CFG0\0"
    assert img.validate("panthor") == [] and img.validate("tyr") == []


# --- shared-section layout -------------------------------------------------------------------

def test_template_numbers_are_arms():
    d = decode_shared_section(shared_section_template())
    g = d.glb
    assert (g.version, g.features, g.input_va, g.output_va) == (0, 0, 0x04002000, 0x04006000)
    assert (g.group_num, g.group_stride, g.perfcnt_size, g.instr_features) == (8, 0xA0, 0, 0x71)
    for i, csg in enumerate(d.groups):
        assert (csg.stream_num, csg.stream_stride) == (8, 0xC)
        assert (csg.input_va, csg.output_va) == (0x04003000 + i * 0x80, 0x04007000 + i * 0x40)
        assert (csg.features, csg.suspend_size, csg.protm_suspend_size) == (0, 0, 0)
        for j, cs in enumerate(csg.streams):
            k = i * 8 + j
            assert (cs.features, cs.input_va, cs.output_va) == (0, 0x04003400 + k * 0x80, 0x04007200 + k * 0x100)


@pytest.mark.parametrize("groups, streams, size", [(8, 8, 0x10000), (3, 8, 0x10000), (4, 16, 0x10000),
                                                   (16, 16, 0x20000), (31, 32, 0x80000)])
def test_layouts_do_not_overlap_and_fit(groups, streams, size):
    lay = SharedLayout(groups, streams, size=size)
    blocks = [(0, 0x24)]  # GLB control + the word after it
    blocks += [(lay.csg_control(i), 0x1C) for i in range(groups)]
    blocks += [(lay.cs_control(i, j), 0xC) for i in range(groups) for j in range(streams)]
    base = SHARED_SECTION_VA
    blocks += [(lay.glb_input_va - base, 0x84), (lay.glb_output_va - base, 0x1C)]
    blocks += [(lay.csg_input_va(i) - base, 0x58) for i in range(groups)]
    blocks += [(lay.csg_output_va(i) - base, 0x20) for i in range(groups)]
    blocks += [(lay.cs_input_va(i, j) - base, 0x58) for i in range(groups) for j in range(streams)]
    blocks += [(lay.cs_output_va(i, j) - base, 0xD8) for i in range(groups) for j in range(streams)]
    blocks.sort()
    for (a, alen), (b, _) in zip(blocks, blocks[1:]):
        assert a + alen <= b, (hex(a), hex(b))
    assert blocks[-1][0] + blocks[-1][1] <= size
    assert lay.csg_control(groups - 1) + 0x1C <= lay.control_size <= lay.glb_input_va - base
    d = decode_shared_section(shared_section_template(layout=lay))
    assert d.glb.group_num == groups and all(g.stream_num == streams for g in d.groups)


def test_layout_refuses_what_does_not_fit():
    with pytest.raises(ValueError, match="more than"):
        SharedLayout(16, 16)
    with pytest.raises(ValueError, match="group_stride"):
        SharedLayout(8, 8, group_stride=0x80)
    with pytest.raises(ValueError):
        SharedLayout(0, 8)


def test_decode_refuses_garbage():
    with pytest.raises(FirmwareError, match="group_num"):
        decode_shared_section(bytes(0x2000))
    with pytest.raises(FirmwareError, match="CS 3.0 control at 0x1220 is past the end"):
        decode_shared_section(shared_section_template()[:0x1200])


# --- Debian's real images ----------------------------------------------------------------------

DOCUMENTED_PACKAGE = "firmware-misc-nonfree_20260916-1"
GIT_SHA = "95a25d71030715381f33105394285e1dcc860a65"


def _firmware_dir() -> Path | None:
    root = Path(os.environ.get("MALI_VDEV_CACHE") or Path.home() / ".cache" / "mali-vdev")
    found = sorted(p for pat in ("usr/lib/firmware/arm/mali", "lib/firmware/arm/mali")
                   for p in root.glob(f"unpacked/firmware-misc-nonfree*/{pat}") if p.is_dir())
    return found[-1] if found else None


FW_DIR = _firmware_dir()
needs_real = pytest.mark.skipif(
    FW_DIR is None, reason="Debian's Mali firmware is not in the cache "
    "($MALI_VDEV_CACHE or ~/.cache/mali-vdev, unpacked/firmware-misc-nonfree*); `make setup` fetches it")

_IFACE_10 = [(0x400000, 0x410000, 0x9), (0x410000, 0x420000, 0x9), (0x0, 0x10000, 0x9),
             (0x800000, 0x820000, 0xD), (0x2000000, 0x2040000, 0x8000000B),
             (0x1000000, 0x1040000, 0x80000009), (0x3000000, 0x3040000, 0x2B)]
_IFACE_12 = _IFACE_10 + [(0xC00000, 0xC10000, 0x9)]
_SHARED = (0x4000000, 0x4010000, 0xC000001B)
_REST = [1, 1, 3, 3, 3, 3, 3, 3, 3, 3, 7, 6, 5, 9, 4, 8]

# csf-firmware-tables.md: file size, version_hash, header.size, entries, shared data range,
# IFACE sections (VA, flags), meta_start of the build info, the GLB control word at 0x20.
FACTS = {
    "10.10": (282624, 0x1050000, 0x318, 24, (0x43000, 0x45000), _IFACE_10, 0x318, 1),
    "11.8": (299008, 0x2080000, 0x318, 24, (0x47000, 0x49000), _IFACE_10, 0x318, 2),
    "12.8": (307200, 0x30D0000, 0x338, 25, (0x49000, 0x4B000), _IFACE_12, 0x338, 2),
    "13.8": (311296, 0x30D0000, 0x338, 25, (0x4A000, 0x4C000), _IFACE_12, 0x338, 2),
}
FACTS["10.8"] = FACTS["10.12"] = FACTS["10.10"]


def real(arch: str) -> FirmwareImage:
    path = FW_DIR / f"arch{arch}" / "mali_csffw.bin"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return load(path)


@needs_real
def test_real_image_set_is_complete():
    archs = {p.parent.name for p in FW_DIR.glob("arch*/mali_csffw.bin")}
    assert {"arch10.8", "arch11.8", "arch12.8", "arch13.8"} <= archs
    # panthor asks for arch10.8 on a G610; Debian ships it as a link to 10.10
    assert (FW_DIR / "arch10.8/mali_csffw.bin").resolve() == (FW_DIR / "arch10.10/mali_csffw.bin").resolve()


@needs_real
@pytest.mark.parametrize("arch", ["10.8", "10.10", "10.12", "11.8", "12.8", "13.8"])
def test_real_image_parses_and_both_drivers_accept_it(arch):
    img = real(arch)
    assert img.header.magic == MAGIC and img.header.major == 0
    for driver in ("panthor", "tyr"):
        warnings = img.validate(driver)
        assert len(warnings) == 1 and "protected-mode" in warnings[0]   # the PROT section
    sh = img.shared_section
    assert (sh.va_start, sh.va_end, sh.flags) == _SHARED
    assert sh.map_flags == {"NOEXEC", "UNCACHED"}
    assert all(e.optional for e in img.entries if e.type_name != "IFACE")
    assert img.git_sha is not None and img.build_info.raw.endswith(b"\0")


def _observed_facts(img: FirmwareImage) -> dict:
    return {
        "file size": len(img.raw), "version_hash": img.version_hash, "header size": img.header.size,
        "header minor": img.header.minor, "entries": len(img.entries),
        "sections (va_start, va_end, flags)": [(s.va_start, s.va_end, s.flags) for s in img.sections],
        "entry types": [e.type for e in img.entries],
        "shared data range": (img.shared_section.data_start, img.shared_section.data_end),
        "loaded sections": len(img.loaded_sections), "last section data end": max(s.data_end for s in img.sections),
        "section names": [(s.name, len(s.name_raw)) for s in img.sections],
        "build info (meta_start, meta_size)": (img.build_info.meta_start, img.build_info.meta_size),
        "git_sha": img.git_sha, "build info text": img.build_info.text,
        "section 3 flags": img.sections[3].describe_flags(), "section 6 flags": img.sections[6].describe_flags(),
    }


def _documented_facts(arch: str) -> dict:
    size, vhash, hsize, n, shared_range, ifaces, meta_start, _ = FACTS[arch]
    return {
        "file size": size, "version_hash": vhash, "header size": hsize, "header minor": 3, "entries": n,
        "sections (va_start, va_end, flags)": ifaces + [_SHARED],
        "entry types": [0] * (len(ifaces) + 1) + _REST,
        "shared data range": shared_range,
        "loaded sections": len(ifaces),       # 7 (arch10/11) or 8 BOs; PROT skipped
        "last section data end": size,
        "section names": [("", 8)] * (len(ifaces) + 1),
        "build info (meta_start, meta_size)": (meta_start, 51),
        "git_sha": GIT_SHA, "build info text": f"git_sha: {GIT_SHA} ",
        "section 3 flags": "R-X+CACHED", "section 6 flags": "RW-+CACHED+PROT",
    }


@needs_real
@pytest.mark.parametrize("arch", ["10.8", "10.10", "10.12", "11.8", "12.8", "13.8"])
def test_real_image_matches_the_documented_facts(arch):
    """Whatever package the cache holds: the facts hold, or the failure says which changed."""
    seen, documented = _observed_facts(real(arch)), _documented_facts(arch)
    changed = {k: (documented[k], seen[k]) for k in documented if seen[k] != documented[k]}
    assert not changed, (
        f"arch{arch}: the Mali firmware in {FW_DIR} differs from the facts documented for "
        f"{DOCUMENTED_PACKAGE} (shared/docs/csf-firmware-tables.md): "
        + "; ".join(f"{k}: documented {d!r}, found {f!r}" for k, (d, f) in changed.items())
        + (" -- Debian ships a newer firmware package: re-check the facts and update FACTS"
           if DOCUMENTED_PACKAGE not in FW_DIR.parts else ""))


@needs_real
@pytest.mark.parametrize("arch", ["10.8", "11.8", "12.8", "13.8"])
def test_our_shared_layout_equals_arms(arch):
    img = real(arch)
    arm = decode_shared_section(img.shared_section.data)
    assert (arm.glb.group_num, arm.glb.group_stride) == (8, 0xA0)
    assert {(g.stream_num, g.stream_stride) for g in arm.groups} == {(8, 0xC)}
    word_0x20 = FACTS[arch][-1]
    ours = shared_section_template(group_num=8, stream_num=8, prfcnt_features=word_0x20)
    assert decode_shared_section(ours) == arm
    assert ours == img.shared_section.data                 # byte for byte, both 0x2000 long
    # and the image we build carries the same blocks at the same VA with the same flags
    built = parse(build_image(ours)).shared_section
    assert (built.va_start, built.va_end, built.flags, built.data) == \
        (img.shared_section.va_start, img.shared_section.va_end, img.shared_section.flags, ours)


def test_overlapping_sections_report_where_the_driver_stops():
    """File order X [0,4) S [3,8) B [1,20) (pages): the driver reserves X, then fails at S; B
    is never reached. One error, naming S and X."""
    page = 0x1000
    base = 0x5000000
    spans = [(0, 4), (3, 8), (1, 20)]
    img = parse(build_image(bytes(64), sections=[SectionSpec(base + a * page, base + b * page, 0x7, b"", b"")
                                                  for a, b in spans], check=False))
    x, s = (next(t for t in img.sections if t.va_start == base + a * page) for a in (0, 3))
    errors = [e for e in img.check("panthor")[0] if "overlaps" in e]
    assert errors == [f"IFACE entry {s.entry} (VA 0x{s.va_start:x}-0x{s.va_end:x}) overlaps IFACE entry {x.entry} "
                      f"(VA 0x{x.va_start:x}-0x{x.va_end:x}): its explicit VA cannot be reserved"]


def test_thousands_of_sections_at_one_va_give_one_error():
    """A hostile image: checking each section against every earlier one gave n(n-1)/2 error
    lines (32 million and 37 s for 8,000 sections)."""
    n = 3000
    img = parse(build_image(bytes(64), sections=[SectionSpec(0x5000000, 0x5001000, 0x7, b"", b"")] * n, check=False))
    for driver in ("panthor", "tyr"):
        errors = [e for e in img.check(driver)[0] if "overlaps" in e]
        first, second = [t.entry for t in img.sections if t.va_start == 0x5000000][:2]
        assert errors == [f"IFACE entry {second} (VA 0x5000000-0x5001000) overlaps IFACE entry {first} "
                          "(VA 0x5000000-0x5001000): its explicit VA cannot be reserved"]
