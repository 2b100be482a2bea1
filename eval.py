"""Test a trained model: ``python eval.py ckpt_path=<file.ckpt> [model=<name> data=<name> ...as in the run]``.

Installed: ``zoo-eval``. The command lives in :mod:`zoo.run.eval`; this file lets a checkout run it without installing.
"""

from zoo.run.eval import main

if __name__ == "__main__":
    main()
