"""Test a trained model: ``python eval.py ckpt_path=<file.ckpt> [model=<name> data=<name> ...as in the run]``.

Installed: ``zoo-eval``. The command lives in :mod:`zoo.cli.eval`; this file lets a checkout run it without installing.
"""

from zoo.cli.eval import main

if __name__ == "__main__":
    main()
