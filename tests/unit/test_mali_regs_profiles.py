"""Unit tests for mali_regs.profiles: every profile must probe under panthor and Tyr."""

import dataclasses

import pytest

from mali_regs import DEFAULT_PROFILE, GPU_CONTROL, MALI_MMIO, PROFILES, firmware_path_for, get_profile, make_gpu_id, profile_names, split_gpu_id

# ---------------------------------------------------------------------------------------------
# Test oracle: the drivers' rules, re-implemented from their source as data
# ---------------------------------------------------------------------------------------------

# panthor_hw.c get_gpu_model_name(): key (arch_major, prod_major) ->
#   list of (min cores, needs RAY_INTERSECTION, strictly more than min?, name), first match wins,
#   then the fall-through name.
PANTHOR_MODEL_TABLE = {
    (10, 2): ([], "Mali-G710"),
    (10, 3): ([], "Mali-G510"),
    (10, 4): ([], "Mali-G310"),
    (10, 7): ([], "Mali-G610"),
    (11, 2): ([(10, True, True, "Mali-G715-Immortalis"), (7, False, False, "Mali-G715")], "Mali-G615"),
    (11, 3): ([], "Mali-G615"),
    (12, 0): ([(10, True, False, "Mali-G720-Immortalis"), (6, False, False, "Mali-G720")], "Mali-G620"),
    (12, 1): ([], "Mali-G620"),
    (13, 0): ([(10, True, False, "Mali-G925-Immortalis"), (6, False, False, "Mali-G725")], "Mali-G625"),
    (13, 1): ([], "Mali-G625"),
    (14, 0): ([], "Mali-G1-Ultra"),
    (14, 1): ([], "Mali-G1-Premium"),
    (14, 3): ([], "Mali-G1-Pro"),
}
GPU_FEATURES_RAY_INTERSECTION = 1 << 2


def panthor_model_name(gpu_id: int, shader_present: int, gpu_features: int) -> str:
    key = (gpu_id >> 28, (gpu_id >> 16) & 0xF)
    if key not in PANTHOR_MODEL_TABLE:
        return "(Unknown Mali GPU)"
    rules, fallback = PANTHOR_MODEL_TABLE[key]
    cores = bin(shader_present).count("1")
    rt = bool(gpu_features & GPU_FEATURES_RAY_INTERSECTION)
    for min_cores, needs_rt, strictly, name in rules:
        enough = cores > min_cores if strictly else cores >= min_cores
        if enough and (rt or not needs_rt):
            return name
    return fallback


def panthor_probe_line(gpu_id: int, shader_present: int, gpu_features: int) -> str:
    """drm_info "%s id 0x%x major 0x%x minor 0x%x status 0x%x" from panthor_hw_info_init()."""
    return (f"{panthor_model_name(gpu_id, shader_present, gpu_features)} id {gpu_id >> 16:#x} "
            f"major {(gpu_id >> 12) & 0xF:#x} minor {(gpu_id >> 4) & 0xFF:#x} "
            f"status {gpu_id & 0xF:#x}")


def tyr_model_name(gpu_id: int) -> str:
    """Tyr gpu.rs GPU_MODELS: only g610 (arch 10, prod 7); prints "mali-{name}"."""
    return "mali-g610" if (gpu_id >> 28, (gpu_id >> 16) & 0xF) == (10, 7) else "mali-unknown"


# panthor_fw.c MODULE_FIRMWARE list (arch 14.8 too in the newest tree)
PANTHOR_FIRMWARE = {f"arm/mali/arch{a}/mali_csffw.bin"
                    for a in ("10.8", "10.10", "10.12", "11.8", "12.8", "13.8", "14.8")}
IO_PGTABLE_PA_BITS = {32, 36, 40, 42, 44, 48, 52}


def test_oracle_matches_driver_corner_cases():
    g715 = make_gpu_id(11, 8, 0, 2)
    assert panthor_model_name(g715, 0x7FF, GPU_FEATURES_RAY_INTERSECTION) == "Mali-G715-Immortalis"
    assert panthor_model_name(g715, 0x3FF, GPU_FEATURES_RAY_INTERSECTION) == "Mali-G715"  # 10, not > 10
    assert panthor_model_name(g715, 0x3F, 0) == "Mali-G615"
    g720 = make_gpu_id(12, 8, 0, 0)
    assert panthor_model_name(g720, 0x3FF, GPU_FEATURES_RAY_INTERSECTION) == "Mali-G720-Immortalis"
    assert panthor_model_name(g720, 0x3FF, 0) == "Mali-G720"
    assert panthor_model_name(g720, 0x1F, 0) == "Mali-G620"
    assert panthor_model_name(make_gpu_id(13, 8, 0, 0), 0xFFF, 4) == "Mali-G925-Immortalis"
    assert panthor_model_name(make_gpu_id(9, 1, 0, 1), 1, 0) == "(Unknown Mali GPU)"


# ---------------------------------------------------------------------------------------------
# Every profile
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("p", PROFILES, ids=lambda p: p.key)
def test_profile_gpu_id_decodes_to_its_arch(p):
    f = split_gpu_id(p.gpu_id)
    assert (f["ARCH_MAJOR"], f["ARCH_MINOR"], f["ARCH_REV"]) == p.arch
    assert f["PROD_MAJOR"] == p.prod_major
    assert (f["VER_MAJOR"], f["VER_MINOR"], f["VER_STATUS"]) == p.version
    assert GPU_CONTROL.GPU_ID.encode(**f) == p.gpu_id
    assert p.value("GPU_ID") == p.gpu_id
    assert p.product_id == p.gpu_id >> 16


@pytest.mark.parametrize("p", PROFILES, ids=lambda p: p.key)
def test_profile_name_is_what_panthor_prints(p):
    assert panthor_model_name(p.gpu_id, p.shader_present, p.gpu_features) == p.name
    assert p.key == p.name.lower().removeprefix("mali-")


@pytest.mark.parametrize("p", PROFILES, ids=lambda p: p.key)
def test_profile_firmware_path(p):
    major, minor, _ = p.arch
    assert p.firmware_path == f"arm/mali/arch{major}.{minor}/mali_csffw.bin"
    assert p.firmware_path == firmware_path_for(p.gpu_id)
    assert p.firmware_path in PANTHOR_FIRMWARE


@pytest.mark.parametrize("p", PROFILES, ids=lambda p: p.key)
def test_profile_passes_panthor_and_tyr_probe_checks(p):
    assert p.gpu_id != 0                                  # else -ENXIO
    assert 10 <= p.arch_major <= 14                       # else -EOPNOTSUPP
    assert p.pa_bits in IO_PGTABLE_PA_BITS                # io-pgtable S1 allocation
    assert 25 <= p.va_bits <= 48                          # Tyr INA_BITS encoding; panthor <= 52
    assert p.as_present & 1 and p.as_count >= 2           # AS0 = MCU, >= 1 user AS
    assert p.as_present & (p.as_present + 1) == 0         # Tyr: contiguous from bit 0
    assert p.as_count <= 16
    assert p.l2_present == 1                              # L2 power-on uses mask 1
    assert p.tiler_present == 1
    assert p.shader_present != 0
    assert 3 <= p.csg_slots <= 31 and 8 <= p.cs_per_csg <= 32 and p.scoreboards >= 1
    assert p.cs_reg_count == (128 if p.arch_major >= 12 else 96)
    # doorbells 0..csg_slots must fit the 2 MiB window
    assert 0x80000 + p.csg_slots * 0x10000 + 4 <= 0x200000


@pytest.mark.parametrize("p", PROFILES, ids=lambda p: p.key)
def test_profile_registers_are_canonical_and_fit(p):
    for name, value in p.regs.items():
        reg = MALI_MMIO[name]
        assert reg.full_name == name
        assert 0 <= value < (1 << reg.width)
        assert reg.access.value == "RO", f"{name} is not an ID register"
    assert p.verified <= set(p.regs)


@pytest.mark.parametrize("p", PROFILES, ids=lambda p: p.key)
def test_profile_reset_values_cover_the_arch_map(p):
    rv = p.reset_values()
    assert set(rv) == {r.full_name for r in p.regmap}
    for name, value in p.regs.items():
        assert rv[name] == value
    assert rv["MCU_STATUS"] == 0 and rv["GPU_IRQ_RAWSTAT"] == 0
    assert rv["COHERENCY_ENABLE"] == 31


@pytest.mark.parametrize("p", PROFILES, ids=lambda p: p.key)
def test_profile_is_frozen(p):
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.gpu_id = 0
    with pytest.raises(TypeError):
        p.regs["GPU_ID"] = 0


def test_tyr_names_only_the_g610():
    assert tyr_model_name(get_profile("g610").gpu_id) == "mali-g610"
    assert {tyr_model_name(p.gpu_id) for p in PROFILES if p.key != "g610"} == {"mali-unknown"}


# ---------------------------------------------------------------------------------------------
# The default: Mali-G610 on RK3588
# ---------------------------------------------------------------------------------------------

def test_default_is_the_rk3588_g610():
    p = DEFAULT_PROFILE
    assert p is get_profile() is get_profile("default") is PROFILES[0]
    assert p.key == "g610" and p.soc == "Rockchip RK3588"
    assert p.gpu_id == 0xA8670005
    assert p.arch == (10, 8, 6)
    assert p.firmware_path == "arm/mali/arch10.8/mali_csffw.bin"
    assert panthor_probe_line(p.gpu_id, p.shader_present, p.gpu_features) == \
        "Mali-G610 id 0xa867 major 0x0 minor 0x0 status 0x5"
    expect = {
        "L2_FEATURES": 0x07120306, "TILER_FEATURES": 0x809, "MEM_FEATURES": 0x301,
        "MMU_FEATURES": 0x2830, "AS_PRESENT": 0xFF, "CSF_ID": 0x040A0412,
        "THREAD_FEATURES": 0x04010000, "THREAD_MAX_THREADS": 2048,
        "THREAD_MAX_WORKGROUP_SIZE": 1024, "THREAD_MAX_BARRIER_SIZE": 1024,
        "TEXTURE_FEATURES[0]": 0xC1FFFF9E, "SHADER_PRESENT": 0x50005, "TILER_PRESENT": 1,
        "L2_PRESENT": 1, "CORE_FEATURES": 0, "COHERENCY_FEATURES": 0, "GPU_FEATURES": 0,
    }
    for name, value in expect.items():
        assert p.value(name) == value, name
    assert p.core_count == 4 and p.va_bits == 48 and p.pa_bits == 40
    assert (p.csg_slots, p.cs_per_csg, p.cs_reg_count, p.scoreboards) == (8, 8, 96, 8)
    assert {"GPU_ID", "SHADER_PRESENT", "L2_FEATURES", "CSF_ID"} <= p.verified
    assert "GPU_REVID" not in p.verified


def test_with_regs_for_a_coherent_guest():
    p = get_profile("g610")
    q = p.with_regs(COHERENCY_FEATURES=1)
    assert q.value("COHERENCY_FEATURES") == 1 and p.value("COHERENCY_FEATURES") == 0
    assert "COHERENCY_FEATURES" not in q.verified and "GPU_ID" in q.verified
    r = p.with_regs({"GPU_ID": make_gpu_id(10, 8, 6, 2)})
    assert r.gpu_id == r.value("GPU_ID") and r.prod_major == 2
    with pytest.raises(KeyError):
        p.with_regs(NO_SUCH_REGISTER=1)
    with pytest.raises(KeyError):
        p.with_regs(GPU_CMD=1)  # an alias, not the canonical name
    with pytest.raises(ValueError):
        p.with_regs(GPU_REVID=1 << 32)


# ---------------------------------------------------------------------------------------------
# get_profile
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("spelling", ["g610", "G610", "Mali-G610", "mali-g610", "MALI-G610",
                                      "mali_g610", " g610 "])
def test_get_profile_spellings(spelling):
    assert get_profile(spelling) is get_profile("g610")


@pytest.mark.parametrize("p", PROFILES, ids=lambda p: p.key)
def test_get_profile_every_name(p):
    assert get_profile(p.key) is p
    assert get_profile(p.name) is p
    assert get_profile(p.name.upper()) is p


def test_get_profile_unknown():
    with pytest.raises(KeyError, match="known: g610"):
        get_profile("g999")


def test_profile_list():
    assert profile_names() == [p.key for p in PROFILES]
    assert set(profile_names()) == {"g610", "g310", "g510", "g710", "g615", "g715", "g620",
                                    "g720", "g625", "g725"}
    assert len({p.gpu_id for p in PROFILES}) == len(PROFILES)
