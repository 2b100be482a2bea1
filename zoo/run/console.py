"""What a run prints: one line saying what it is, each log line once, no library noise (``configs/extras/``);
the resolved config goes to ``<run dir>/config_tree.log``."""
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, ListConfig, OmegaConf

from zoo.run.rundir import in_multirun

# Lightning's info lines that say nothing about the run (``rank_zero_info`` messages, by their start).
LIGHTNING_NOISE = (
    "💡 Tip:",  # adverts for litlogger / litmodels
    "Trainer already configured with model summary callbacks",  # configs/callbacks/default.yaml sets one on purpose
)
PRINT_ORDER = ("data", "model", "callbacks", "logger", "trainer", "paths", "extras")


class _DropLightningNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(LIGHTNING_NOISE)


_NOISE_FILTER = _DropLightningNoise()


def silence_noise(cfg: DictConfig) -> None:
    """Print each Lightning log line once; ``extras.quiet`` also drops tips and beside-the-point warnings."""
    # `import lightning` gives its loggers a console handler of their own (`INFO: ...`) while their records
    # also reach the root logger's handlers: where Hydra configured those, Lightning's own handlers go.
    if logging.getLogger().handlers:
        for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
            logger = logging.getLogger(name)
            own = [h for h in logger.handlers if type(h) is logging.StreamHandler]
            for handler in own:
                logger.removeHandler(handler)
            logger.propagate = logger.propagate or bool(own)
    if not cfg.get("extras", {}).get("quiet", False):
        return
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).addFilter(_NOISE_FILTER)  # never twice: addFilter skips a known filter
    for category in (DeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category)
    # debug=overfit: Zoo's loaders stop shuffling themselves; Lightning only recognises torch's samplers.
    warnings.filterwarnings("ignore", message="You requested to overfit but enabled")
    # SLURM's srun on PATH (a login node): Lightning suggests srun for every run. It matters only inside a SLURM
    # allocation, started without srun; Zoo's launcher (hydra/launcher=slurm) and README's sbatch script use srun.
    if "SLURM_JOB_ID" not in os.environ or "SLURM_STEP_ID" in os.environ:
        warnings.filterwarnings("ignore", message="The `srun` command is available on your system but is not used")
    # Short runs (debug=limit): Zoo's tasks log once per epoch, so log_every_n_steps does not matter.
    warnings.filterwarnings("ignore", message="The number of training batches .* is smaller than the logging interval")


@rank_zero_only
def print_config_tree(cfg: DictConfig, order: Sequence[str] = PRINT_ORDER, save_to: Path | None = None) -> None:
    """Log what the run is in one line; write the resolved config tree to ``save_to``, and print it with
    ``extras.print_config`` (not in a multirun's job)."""
    import rich
    from rich.syntax import Syntax
    from rich.tree import Tree

    tree = Tree("CONFIG", style="dim", guide_style="dim")
    keys = [k for k in order if k in cfg] + [k for k in cfg if k not in order and k != "hydra"]
    for key in keys:
        value = cfg[key]
        text = OmegaConf.to_yaml(value, resolve=True) if isinstance(value, DictConfig | ListConfig) else str(value)
        tree.add(key, style="dim", guide_style="dim").add(Syntax(text, "yaml"))
    if save_to is not None:
        save_to.parent.mkdir(parents=True, exist_ok=True)
        with save_to.open("w") as f:
            rich.print(tree, file=f)
    what = f"{cfg.get('model_name') or '?'} on {cfg.get('data_name') or '?'} (seed {cfg.get('seed')})"
    where = f": run folder {save_to.parent} (config in {save_to.name})" if save_to is not None else ""
    logging.getLogger(__name__).info("%s%s", what, where)
    if cfg.get("extras", {}).get("print_config", False) and not (in_multirun() and save_to is not None):
        rich.print(tree)
