"""A shader exactly as Mesa compiles it: vk_meta's copy-buffer kernel captured from Debian's
Mesa in the guest (tests/unit/data/mesa-vk-meta-copy-buffer.txt, source in its header).

Its FAU words, read off the code: u0 a base copy index (<< 6), u4:u5 the source address, u6:u7
the destination, u8 the size in bytes, u10/u11/u12 the byte offsets of words 1-3 of a 16-byte
chunk. Copy id = global id x + 64 * u0; chunks at offset >= size are skipped.
"""

from pathlib import Path

import numpy as np

from shader import isa
from tests.unit.shader_harness import BUF, FlatAspace, dispatch, hi, lo

DATA = Path(__file__).parent / "data" / "mesa-vk-meta-copy-buffer.txt"
# this Mesa version's names for our table's instructions (same encodings)
RENAMED = {"LD_PKA": "LD_BUFFER", "LEA_PKA": "LEA_BUFFER", "ARSHIFT_OR": "RSHIFT_OR"}


def _words():
    for line in DATA.read_text().splitlines():
        if line and not line.startswith("#"):
            yield int.from_bytes(bytes.fromhex(line[:23]), "little"), line[23:].strip()


def test_every_word_decodes_to_the_instruction_mesa_names():
    for raw, text in _words():
        name = text.split()[0]
        base = name.split(".")[0]
        assert isa.decode(raw).name.split(".")[0] == RENAMED.get(base, base), text


def test_the_copy_kernel_copies_and_stops_at_the_size():
    code = b"".join(raw.to_bytes(8, "little") for raw, _ in _words())
    src, dst, size = BUF, BUF + 0x8000, 4096 + 48        # 259 chunks: the last workgroup diverges
    a = FlatAspace()
    data = np.random.default_rng(3).integers(0, 256, 0x6000, dtype=np.uint8).tobytes()
    a.write(src, data)
    a.write(dst, b"\xee" * 0x6000)
    fau = [0, 0, 0, 0, lo(src), hi(src), lo(dst), hi(dst), size, 0, 4, 8, 12, 0]
    a, job = dispatch(code, fau, wg=(64, 1, 1), groups=(5, 1, 1), preload=1 << 12, aspace=a)
    out = a.read(dst, 0x6000)
    assert out[:size] == data[:size]
    assert out[size:] == b"\xee" * (0x6000 - size)
