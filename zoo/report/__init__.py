"""Reporting: compare runs from their run directories (``python -m zoo.report <folder>``).

* :mod:`zoo.report.runs`: read run directories (names, effective config, split, status);
* :mod:`zoo.report.tables`: the leaderboard, the per-seed table and the paired statistics;
* :mod:`zoo.report.stats`: paired statistics on per-node correctness (bootstrap CIs, exact McNemar);
* :mod:`zoo.report.plots`, :mod:`zoo.report.to_wandb`: figures, and the same to Weights & Biases;
* :mod:`zoo.report.main`: :func:`~zoo.report.main.report`, the command line and the Hydra callback.
"""
