"""`make bench`: every benchmark of the project, printing numbers and ratios."""

from . import interpreter, mmio, tracing


def main() -> None:
    mmio.main()
    interpreter.main()
    tracing.main()


main()
