"""Command-line entry point: ``python train.py model=<name> data=<name> [key=value ...]`` (installed: ``zoo-train``).

The command lives in :mod:`zoo.cli.train`; this file lets a checkout run it without installing Zoo.
"""

from zoo.cli.train import main

if __name__ == "__main__":
    main()
