"""``zoo-eval`` (``python eval.py``): ``ckpt_path=<file.ckpt> [model=<name> data=<name> ...as in the run]``."""

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


def evaluate(cfg: DictConfig) -> float | None:
    """Test the checkpoint: its ``test/acc`` (for sweeps)."""
    from zoo.run.runner import train

    return train(cfg)[0].get("test/acc")


# The module's name is Hydra's job name (`eval`: <run dir>/eval.log); the configs are package zoo.configs.
@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="eval.yaml")
def run(cfg: DictConfig) -> None:
    # train() with train=false: checks the checkpoint fits the model, tests it, writes <run dir>/metrics.json.
    # SIGTERM/SIGINT: exit 143/130 with a hint; a refused evaluation leaves its folder marked failed (error.txt).
    with reported_as_message():  # bad input: its message and exit code 2, no traceback
        run_job(evaluate, cfg)


def main() -> None:
    """``zoo-eval``: the overrides are composed first (a typo: one line, exit code 2, did you mean), then Hydra runs."""
    check_command("eval.yaml")
    run()


if __name__ == "__main__":
    main()
