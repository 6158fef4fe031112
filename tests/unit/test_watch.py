"""Watch/break filters on register accesses."""

import logging

import pytest

from mali_gpu.watch import Watcher, parse_watch
from tests.driver_model import Gpu


def test_parse_watch_specs():
    gpu = Gpu()
    m = gpu.dev.regmap
    w = parse_watch("GPU_COMMAND:w=0x101", m, pause=False)
    assert (w.name, w.reads, w.writes, w.value) == ("GPU_COMMAND", False, True, 0x101)
    assert parse_watch("SHADER_PRESENT:r", m, pause=False).offsets == {0x100, 0x104}  # both halves
    assert parse_watch("GPU_INT_MASK", m, pause=False).name == "GPU_IRQ_MASK"          # panthor's alias
    for bad in ("NO_SUCH_REG", "GPU_ID:x", "GPU_ID:r=zz"):
        with pytest.raises(ValueError):
            parse_watch(bad, m, pause=False)
    with pytest.raises(ValueError):
        Watcher(m).add(parse_watch("GPU_ID", m, pause=True))  # a break needs QMP
    gpu.close()


def test_watch_logs_matching_accesses_decoded(caplog):
    gpu = Gpu()
    watcher = Watcher(gpu.dev.regmap)
    watcher.add(parse_watch("GPU_COMMAND:w=0x101", gpu.dev.regmap, pause=False))
    watcher.add(parse_watch("GPU_ID:r", gpu.dev.regmap, pause=False))
    gpu.dev.events.attach(watcher)
    with caplog.at_level(logging.WARNING, logger="mali.watch"):
        gpu.read("GPU_ID")
        gpu.write("GPU_COMMAND", 0x23304)  # another value: no hit
        gpu.write("GPU_COMMAND", 0x101)
    assert watcher.hits == 2
    text = caplog.text
    assert "read  GPU_ID = 0xa8670005" in text
    assert "GPU_COMMAND = 0x00000101 (COMMAND=RESET, RESET_MODE=SOFT_RESET)" in text
    gpu.close()
