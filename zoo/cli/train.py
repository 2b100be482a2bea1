"""``zoo-train`` (``python train.py``, ``python -m zoo.cli.train``): ``model=<name> data=<name> [key=value ...]``."""

import zoo.signals as signals

# Before the other imports: from here on (imports, Hydra's start-up) Ctrl-C or SIGTERM ends the command with one
# line and exit code 130/143, no traceback; a job then installs its own hint (hydra_plugins.zoo_hydra.jobs.install_signals).
# ruff: noqa: E402
signals.install(lambda: "Run the same command again.")

import hydra
from omegaconf import DictConfig

from hydra_plugins.zoo_hydra.jobs import run_job
from zoo.cli.overrides import check_command
from zoo.errors import reported_as_message
from zoo.registry import CONFIG_DIR


def optimized_value(cfg: DictConfig) -> float | None:
    """Train, and return ``optimized_metric`` (e.g. ``val/acc_best``) for sweepers (Optuna)."""
    # Imported here, in the process that trains: a parallel sweep's launcher process (hydra/launcher=joblib,
    # slurm) then never imports torch and Lightning, and `--help`/`--cfg` answer without them.
    from zoo.run.runner import train

    metrics, _ = train(cfg)
    return metrics.get(cfg.get("optimized_metric"))


# The module's name is Hydra's job name (`train`: <run dir>/train.log); the configs are package zoo.configs.
@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train.yaml")
def run(cfg: DictConfig) -> float | None:
    # In a multirun (-m) a failed job is logged, recorded in <job dir>/error.txt and the sweep goes on;
    # a single run raises.
    with reported_as_message():  # bad input: its message and exit code 2, no traceback
        return run_job(optimized_value, cfg)


def main() -> None:
    """``zoo-train``: the overrides are composed first (a typo: one line, exit code 2, did you mean), then Hydra runs."""
    check_command("train.yaml")
    run()


if __name__ == "__main__":  # also how DDP child ranks start (zoo.run.distributed.child_command)
    main()
