"""The resolvers ``configs/hydra/default.yaml`` and ``configs/eval.yaml`` use to decide where Hydra writes
(:mod:`zoo.run.rundir`). Resolvers, because Hydra writes ``.hydra/`` before any callback of a job runs, with every
launcher; Hydra imports each module under ``hydra_plugins`` when it starts, so they exist before any config is
composed."""

from omegaconf import OmegaConf

from zoo.run import rundir

OmegaConf.register_new_resolver("zoo_stamp", rundir.run_stamp, replace=True)
OmegaConf.register_new_resolver("zoo_record", rundir.record_subdir, replace=True)
OmegaConf.register_new_resolver("zoo_log_file", rundir.log_file, replace=True)
OmegaConf.register_new_resolver("zoo_evals", rundir.evals_dir, replace=True)
