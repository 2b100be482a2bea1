"""``python -m zoo.run.paired <folder>``: the same as ``python -m zoo.report <folder>`` (kept for old commands).

:class:`PairedReport` is :class:`zoo.report.main.ReportCallback`, for configs that still name it.
"""

from zoo.report.main import ReportCallback as PairedReport
from zoo.report.main import main as _main

__all__ = ["PairedReport", "main"]


def main(argv: list[str] | None = None) -> None:
    _main(argv, prog="python -m zoo.run.paired")


if __name__ == "__main__":
    main()
