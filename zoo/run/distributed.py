"""DDP with Hydra: every rank starts from rank zero's resolved config, in its run directory. Lightning's
``_hydra_subprocess_cmd`` reruns ``sys.argv``: wrong in a multirun, for in-process configs and settings
decided after composition (pinned: tests/test_lightning_internals.py)."""
import logging
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from zoo.files import HYDRA_DIR
from zoo.registry import kind_of_data

log = logging.getLogger(__name__)

TRAIN_MODULE = "zoo.cli.train"  # what `zoo-train` and `python train.py` run; children: python -m zoo.cli.train
RESOLVED_NAME = "config_resolved"
_run_cfg: DictConfig | None = None


def _quote(value: str) -> str:
    """Quote a value for a Hydra command-line override."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def child_command(local_rank: int) -> tuple[Sequence[str], str]:
    """Command and working directory that start DDP rank ``local_rank`` on this node (replaces Lightning's)."""
    if _run_cfg is None:
        from lightning.fabric.strategies.launchers.subprocess_script import _hydra_subprocess_cmd

        return _hydra_subprocess_cmd(local_rank=local_rank)
    cfg = OmegaConf.create(OmegaConf.to_container(_run_cfg, resolve=True))
    cfg.pop("hydra", None)
    run_dir = Path(cfg.paths.output_dir).resolve()
    config_dir = run_dir / HYDRA_DIR
    config_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, config_dir / f"{RESOLVED_NAME}.yaml")
    cwd = (HydraConfig.get().runtime.cwd if HydraConfig.initialized() else None) or os.getcwd()
    return [
        sys.executable, "-m", TRAIN_MODULE, "--config-path", str(config_dir), "--config-name", RESOLVED_NAME,
        f"hydra.run.dir={_quote(str(run_dir))}",
        "hydra.output_subdir=null",  # rank zero already wrote .hydra/
        f"hydra.job.name=train_ddp_process_{local_rank}",
        "hydra/job_logging=stdout",  # no <job>.log file from the child ranks
        "hydra/hydra_logging=none",
    ], cwd


def use_resolved_config_for_ddp_children(cfg: DictConfig) -> None:
    """Make Lightning start DDP child processes from ``cfg`` (see the module docstring)."""
    global _run_cfg
    _run_cfg = cfg
    from lightning.fabric.strategies.launchers import subprocess_script as fabric_launcher
    from lightning.pytorch.strategies.launchers import subprocess_script as pl_launcher

    for module in (fabric_launcher, pl_launcher):
        module._hydra_subprocess_cmd = child_command


def device_count(devices: object) -> int | None:
    """Devices that ``trainer.devices`` asks for, or None when Lightning decides (``auto``, ``-1``)."""
    if isinstance(devices, int):
        return None if devices == -1 else devices
    if isinstance(devices, str):
        text = devices.strip()
        if text in ("auto", "-1"):
            return None
        return len([d for d in text.split(",") if d.strip()]) if "," in text else int(text)
    return len(list(devices))  # a list of device indices


def uses_ddp(trainer: DictConfig) -> bool:
    """Whether ``trainer.strategy`` (a name or a ``_target_`` node) is a DDP strategy."""
    strategy = trainer.get("strategy", "auto")
    target = strategy.get("_target_", "") if isinstance(strategy, DictConfig) else str(strategy)
    return "ddp" in target.lower()


def keep_full_batch_on_one_device(cfg: DictConfig) -> DictConfig:
    """Run full-batch graph data on one device, with a warning (each rank would compute the same step)."""
    if "trainer" not in cfg or kind_of_data(cfg.data._target_) != "graph":
        return cfg
    t = cfg.trainer
    if device_count(t.get("devices", 1)) == 1 and int(t.get("num_nodes", 1)) == 1:
        return cfg
    log.warning(
        "data=%s is one full graph (full-batch training): it cannot be split across devices. Running it on "
        "one device instead of trainer.devices=%s trainer.num_nodes=%s. Set trainer.devices=1 to silence this.",
        cfg.get("data_name"), t.get("devices"), t.get("num_nodes", 1),
    )
    with open_dict(cfg):
        t.devices, t.num_nodes = 1, 1
        if uses_ddp(t):
            t.strategy = "auto"
    return cfg


@contextmanager
def process_state_kept() -> Iterator[None]:
    """Leave the process as the run found it, error or not: the process group destroyed (left to the exit,
    gloo can abort a finished rank); ``os.environ`` restored (Lightning's DDP launcher sets MASTER_PORT,
    WORLD_SIZE...: a sweep's next job would wait forever for ranks it never started), and torch's thread
    count, the warning filters and the child command's config."""
    global _run_cfg
    import torch
    import torch.distributed as dist

    environ, threads = dict(os.environ), torch.get_num_threads()
    try:
        with warnings.catch_warnings():  # restores the filters
            yield
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        for name in os.environ.keys() - environ.keys():
            del os.environ[name]
        os.environ.update({name: value for name, value in environ.items() if os.environ.get(name) != value})
        torch.set_num_threads(threads)
        _run_cfg = None
