"""Resolvers that decide where Hydra writes (:mod:`zoo.run.rundir`): Hydra writes ``.hydra/`` before any
callback of a job runs, and imports every module under ``hydra_plugins`` at start-up, before any config is
composed."""

from omegaconf import OmegaConf

from zoo.run import rundir

# Cached, like Hydra's own ${now:}: every callback that reads hydra.run.dir gets the same name, a clock tick between
# them never makes a second run directory.
OmegaConf.register_new_resolver("zoo_stamp", rundir.run_stamp, use_cache=True, replace=True)
OmegaConf.register_new_resolver("zoo_record", rundir.record_subdir, replace=True)
OmegaConf.register_new_resolver("zoo_log_file", rundir.log_file, replace=True)
OmegaConf.register_new_resolver("zoo_evals", rundir.evals_dir, replace=True)
