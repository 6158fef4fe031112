"""Coverage-guided fuzzing harnesses (atheris, libFuzzer), one small module each; each
asserts its invariants and raises `harness.Finding` when one breaks.

- `vfio_messages`: byte streams and framed vfio-user messages (every command, fuzzed fields,
  memfds/eventfds/pipes attached) to a `Server` over a real socketpair. Only well-framed
  replies, never an internal error; at EOF the connection is dropped and every fd it got
  closed; the device answers GPU_ID and the next connection is served.
- `registers`: random BAR accesses to a `MaliDevice`, the engine stepped in between. No
  internal error; then a reset, probe, firmware boot and a job through the driver model work.
- `cs_ring`: random ring words in a group. No internal error or CS_UNRECOVERABLE; the device
  answers; a job in another group completes.
- `firmware_image`: `mali_csffw.bin` bytes to `firmware_loader.image`. `FirmwareError` or an
  image whose queries and both drivers' checks run, holding no more than the file.
- `trace_binary`, `trace_jsonl`, `trace_mmiotrace`: files to the three trace readers. Their
  format error, or events (bounded by the input size) that `trace show`/`stats` decode.

`python -m fuzz list | run NAME [libFuzzer flags] | all --time S | seeds NAME DIR | replay NAME FILE...`;
`make fuzz` runs every harness for a while; tests/unit/test_fuzz_harnesses.py replays each
seed corpus in `make test`. `harness.py` has what they share (the log watch, the bounds).
"""
