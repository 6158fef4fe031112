"""The firmware image parser (`firmware_loader.image`): arbitrary `mali_csffw.bin` bytes.

Invariants: `FirmwareError` or an image whose queries and both drivers' checks run; what the
image holds is bounded by the file (no entry list or copied data larger than the input)."""

from __future__ import annotations

from firmware_loader.image import BuildInfo, FirmwareError, parse

from .harness import Finding, mutations, watched


@watched
def one_input(data: bytes) -> None:
    try:
        img = parse(data)
    except FirmwareError:
        return
    if len(img.entries) > len(data) // 4:
        raise Finding(f"{len(img.entries)} entries in {len(data)} bytes")
    # Bytes copied out of the file (views of it cost nothing): entries do not overlap, so
    # their payloads add up to the file at most; data ranges may overlap, so they must be views.
    parts = [s.data for s in img.sections] + [e.payload for e in img.entries]
    parts += [e.decoded.view for e in img.entries if isinstance(e.decoded, BuildInfo)]
    held = sum(len(p) for p in parts if not isinstance(p, memoryview))
    if held > len(data):
        raise Finding(f"the parsed image holds {held} bytes of a {len(data)}-byte file")
    for driver in ("panthor", "tyr"):
        errors, warnings = img.check(driver)
        try:
            img.validate(driver)
        except FirmwareError as e:
            if e.errors != errors:
                raise Finding(f"validate() and check() disagree: {e.errors} != {errors}") from None
    repr(img), img.git_sha, img.shared_section, img.loaded_sections
    for s in img.sections:
        repr(s), s.name, s.map_flags, s.describe_flags(), img.section_at(s.va_start)
    for e in img.entries:
        repr(e), e.type_name


def seeds() -> list[bytes]:
    from firmware_loader.builder import SectionSpec, build_image

    base = [
        build_image(bytes(64)),
        build_image(bytes(64), code=bytes(range(256)) * 2, git_sha=None),
        build_image(bytes(16), sections=[SectionSpec(0x5000000, 0x5001000, 0x7, b"\1" * 32, b"data")], check=False),
    ]
    return base + mutations(base, 60, seed=2)
