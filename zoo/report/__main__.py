"""``python -m zoo.report <folder>``: see :mod:`zoo.report.main`."""

from zoo.report.main import main

main()
