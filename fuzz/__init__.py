"""Coverage-guided fuzzing harnesses (atheris, libFuzzer), one small module each.

| module | what it feeds | invariants it asserts |
|---|---|---|
| `vfio_messages` | byte streams and framed vfio-user messages (with memfds, eventfds, pipes attached) to a `Server` over a real socketpair | only error replies, never an internal error; every reply framed; the connection is dropped cleanly at EOF; the device still answers GPU_ID; no fd left behind |
| `registers` | random BAR accesses (mostly real registers, any width) to a `MaliDevice`, the engine stepped in between | no internal error; then a reset, the firmware boot and a job through the driver model work |
| `cs_ring` | random ring words (valid instructions with fuzzed fields, raw words) in a group | no internal error or CS_UNRECOVERABLE; the device answers; a job on another slot completes |
| `firmware_image` | `mali_csffw.bin` bytes to `firmware_loader.image` | `FirmwareError` or an image whose check() runs; entries bounded by the size |
| `trace_binary`, `trace_jsonl`, `trace_mmiotrace` | trace files to the three readers | their format error or events (bounded by the input size) that decode and re-encode |

`python -m fuzz list | run NAME [libFuzzer flags] | all --time S | seeds NAME DIR | replay NAME FILE...`;
`make fuzz` runs every harness for a while; `tests/unit/test_fuzz_harnesses.py` replays a fixed seeded
corpus through each in `make test`. `harness.py` has what they share (the log watch, the bounds).
"""
