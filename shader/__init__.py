"""The shader core: Valhall (v10) instruction decoding and a lane-parallel interpreter.

`isa` is the one table of encodings (decode, disassemble, encode), `interp` runs many lanes
at once with numpy, `compute` runs a RUN_COMPUTE dispatch workgroup batch by batch in
bounded steps, `descriptors` reads the few descriptor fields the dispatch needs.
"""
