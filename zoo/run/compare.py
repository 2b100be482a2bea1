"""``python -m zoo.run.compare <folder>``: the same as ``python -m zoo.report <folder>`` (kept for old commands)."""

from zoo.report.main import main as _main


def main(argv: list[str] | None = None) -> None:
    _main(argv, prog="python -m zoo.run.compare")


if __name__ == "__main__":
    main()
