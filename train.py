"""Command-line entry point: ``python train.py model=<name> data=<name> [key=value ...]`` (installed: ``zoo-train``).

The command lives in :mod:`zoo.cli.train`; this file lets a checkout run it without installing Zoo.
"""

from zoo.cli.train import main, optimized_value  # noqa: F401 - optimized_value: for code that imports it from here

if __name__ == "__main__":
    main()
