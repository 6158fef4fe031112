"""`make bench`: every benchmark of the project, printing numbers and ratios."""

from . import interpreter, mmio


def main() -> None:
    mmio.main()
    interpreter.main()


main()
