"""The binary trace reader: arbitrary files through read, decode, show and stats."""

from .traces import reader_harness

one_input, seeds = reader_harness("binary")
