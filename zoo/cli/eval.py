"""``zoo-eval``'s entry point as installed (pyproject.toml); the command is :func:`zoo.cli.train.eval_main`."""

from zoo.cli.train import eval_main as main  # noqa: F401
