"""`make bench`: every benchmark of the project, printing numbers and ratios."""

from . import mmio


def main() -> None:
    mmio.main()


main()
