"""Test a trained model: ``python eval.py ckpt_path=<file.ckpt | run dir> [model=<name> data=<name> ...as in the run]``.

Installed: ``zoo-eval``. The command lives in :mod:`zoo.cli.train`; this file lets a checkout run it without installing.
"""

from zoo.cli.train import eval_main

if __name__ == "__main__":
    eval_main()
