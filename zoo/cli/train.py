"""``zoo-train model=<name> data=<name> [key=value ...]`` and ``zoo-eval ckpt_path=<file.ckpt | run dir>
[...]`` (``python train.py``, ``python eval.py``): an override typo or bad input ends the command with one
line and exit code 2, no traceback (:func:`zoo.run.sweep.run_job`)."""

import zoo.signals as signals

# Before the other imports: from here on (imports, Hydra's start-up) Ctrl-C or SIGTERM ends the command with one
# line and exit code 130/143, no traceback; a job then installs its own hint (zoo.run.sweep.install_signals).
# ruff: noqa: E402
signals.install(lambda: "Run the same command again.")

import warnings

import hydra
from omegaconf import DictConfig

from zoo.cli.overrides import check_command
from zoo.errors import reported_as_message
from zoo.registry import CONFIG_DIR
from zoo.run.sweep import run_job


def optimized_value(cfg: DictConfig) -> float | None:
    """Train (or, ``train=false``, test), and return ``optimized_metric`` (e.g. ``val/acc_best``) for sweepers."""
    # Imported here: a parallel sweep's launcher process, --help and --cfg never import torch and Lightning.
    from zoo.run.runner import train

    metrics, _ = train(cfg)
    return metrics.get(cfg.get("optimized_metric"))


def _job(cfg: DictConfig) -> float | None:
    with reported_as_message():  # bad input: its message and exit code 2, no traceback
        return run_job(optimized_value, cfg)


def _command(config_name: str) -> None:
    """Check the overrides, then run ``configs/<config_name>`` (Hydra's job name: ``train``, or its own)."""
    # configs/hydra/launcher/joblib.yaml spells out every key of the plugin's config of the same name, so Hydra's
    # deprecated matching of the two changes nothing: its warning (three times per command) is left out.
    warnings.filterwarnings("ignore", r"\s*'hydra/launcher/joblib' is validated against ConfigStore schema")
    check_command(config_name)
    hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=config_name)(_job)()


def main() -> None:
    """``zoo-train``."""
    _command("train.yaml")


def eval_main() -> None:
    """``zoo-eval``: test a trained model (``train=false``); its ``test/acc`` goes to sweepers."""
    _command("eval.yaml")


if __name__ == "__main__":  # also how DDP child ranks start (zoo.run.distributed.child_command)
    main()
