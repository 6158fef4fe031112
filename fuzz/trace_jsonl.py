"""The jsonl trace reader: arbitrary files through read, decode, show and stats."""

from __future__ import annotations

from .harness import mutations, watched
from .traces import check_reader, encoded

FORMAT = "jsonl"


@watched
def one_input(data: bytes) -> None:
    check_reader(FORMAT, data)


def seeds() -> list[bytes]:
    base = [encoded(FORMAT), encoded(FORMAT, 8), encoded(FORMAT, 0)]
    return base + mutations(base, 40, seed=1)
