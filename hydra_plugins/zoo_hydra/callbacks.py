"""Zoo's Hydra callbacks (``configs/hydra/default.yaml``); what they do lives in :mod:`zoo.run`. Hydra turns a
callback's error into a warning and goes on: each stops the command instead (:func:`zoo.errors.stops_the_command`)."""

import shutil
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from zoo.errors import ConfigError, ZooError, stops_the_command
from zoo.run import rundir, sweep


class PreflightChecks(Callback):
    """Before a sweep's first job: its launcher's or sweeper's extra, slurm's ``sbatch`` (else exit 2)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: object) -> None:
        with stops_the_command():
            if not HydraConfig.initialized():
                HydraConfig.instance().set_config(config)  # the sweep dir reads ${hydra:runtime.choices...}
            if missing := sweep.missing_extra(config):
                raise ConfigError(f"{missing} is not installed: install the sweeps extra, pip install 'zoo[sweeps]' "
                                  f"(in a checkout: pip install -e '.[sweeps]').")
            launcher = str(OmegaConf.select(config, "hydra.launcher._target_", default=""))
            if "SlurmLauncher" in launcher and shutil.which("sbatch") is None:
                raise ConfigError(
                    "hydra/launcher=slurm submits each job with SLURM's sbatch, which is not on this machine's PATH: "
                    "run the sweep on a SLURM login node, or drop hydra/launcher=slurm (or use "
                    "hydra/launcher=submitit_local) to run the jobs here.")


class RunDirGuard(Callback):
    """Give a single run its folder (a time-stamped one of its own), writable, checked and locked, before Hydra
    writes its record there."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        with stops_the_command():
            HydraConfig.instance().set_config(config)  # the run dir reads ${hydra:runtime.choices...}
            run_dir = sweep.run_folder(config)
            with read_write(config.hydra), open_dict(config.hydra):
                config.hydra.run.dir = str(run_dir)  # resolved once: `${now:...}` must name the directory locked here
            try:
                rundir.check_writable(run_dir)
                if rundir.admit(config, run_dir):  # the lock first: a directory in use is refused as such
                    rundir.set_aside_attempt(run_dir)  # a fresh start's record is .hydra/ (DDP ranks join the run)
            except ZooError:
                sweep.remove_made(run_dir)
                raise

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        with stops_the_command():
            rundir.release(str(config.hydra.run.dir))


class SweepGuard(Callback):
    """Before any job, lock the sweep folder and refuse another sweep's (see :func:`sweep.admit_sweep`)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: object) -> None:
        with stops_the_command():
            sweep.admit_sweep(config)


class FailedJobsReport(Callback):
    """List a multirun's failed jobs; exit 1 if any (SystemExit: Hydra makes an Exception a warning)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: object) -> None:
        with stops_the_command():
            sweep.report_failed_jobs(config)
