"""Resolvers that decide where Hydra writes (:mod:`zoo.run.rundir`), here because Hydra writes ``.hydra/``
before any job callback runs and imports ``hydra_plugins`` before composing a config."""

from omegaconf import OmegaConf

from zoo.run import rundir

# Cached, like ${now:}: a clock tick between two reads of hydra.run.dir never makes a second run directory, and
# the root stays where it was first read while the run's own checkpoints appear.
OmegaConf.register_new_resolver("zoo_stamp", rundir.run_stamp, use_cache=True, replace=True)
OmegaConf.register_new_resolver("zoo_record", rundir.record_subdir, replace=True)
OmegaConf.register_new_resolver("zoo_log_file", rundir.log_file, replace=True)
OmegaConf.register_new_resolver("zoo_root", rundir.root_dir, use_cache=True, replace=True)
