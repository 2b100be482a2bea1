"""``zoo-eval`` (``python eval.py``): ``ckpt_path=<file.ckpt> [model=<name> data=<name> ...as in the run]``."""

from zoo.run import signals

# Before the other imports: from here on (imports, Hydra's start-up) Ctrl-C or SIGTERM ends the command with one
# line and exit code 130/143, no traceback; a job then installs its own hint (zoo.run.sweeps.install_signals).
# ruff: noqa: E402
signals.install(lambda: "Run the same command again.")

import hydra
from omegaconf import DictConfig

from zoo.run.cli import reported_as_message
from zoo.run.compatibility import CONFIG_DIR
from zoo.run.sweeps import run_job


def evaluate(cfg: DictConfig) -> float | None:
    """Test the checkpoint: its ``test/acc`` (for sweeps)."""
    from zoo.run.runner import train

    return train(cfg)[0].get("test/acc")


# The module's name is Hydra's job name (`eval`: <run dir>/eval.log); the configs are package zoo.configs.
@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="eval.yaml")
def main(cfg: DictConfig) -> None:
    # train() with train=false: checks the checkpoint fits the model, tests it, writes <run dir>/metrics.json.
    # SIGTERM/SIGINT: exit 143/130 with a hint; a refused evaluation leaves its folder marked failed (error.txt).
    with reported_as_message():  # bad input: its message and exit code 2, no traceback
        run_job(evaluate, cfg)


if __name__ == "__main__":
    main()
