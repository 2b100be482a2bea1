"""``hydra/launcher=slurm``: hydra-submitit-launcher's ``SlurmLauncher``, sized by each job's trainer, its
arrays checked by ``sbatch --test-only`` first, its jobs watched until each has a result or a reason,
cancelled when the sweep is stopped (docs/clusters.md). The SLURM calls are in :mod:`zoo.run.slurm`."""

import logging
import shutil
import time
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from omegaconf import OmegaConf, open_dict

import zoo.signals as signals
from zoo.errors import ConfigError, reported_as_message
from zoo.files import ERROR_FILE
from zoo.run import rundir, slurm
from zoo.run.rundir import record_failure
from zoo.run.sweep import check_job_folder, finished_value, resumes, shared_folder, worst_value

# The sweeps extra. Without it Hydra still imports this module at start-up, silently; PreflightChecks then says
# what to install when hydra/launcher=slurm is asked for.
try:
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as _Base
except ImportError:
    from hydra.plugins.launcher import Launcher as _Base

log = logging.getLogger("zoo.slurm")


class SlurmLauncher(_Base):
    """Hydra's submitit SLURM launcher with Zoo's checks, watching and stopping (see the module doc)."""

    def launch(self, job_overrides: Any, initial_job_idx: int) -> list[JobReturn]:
        assert self.config is not None and self.hydra_context is not None
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        done: list[slurm.SlurmJob] = []
        with reported_as_message():  # a value sbatch would refuse: one line, exit code 2, nothing submitted
            groups: dict[tuple, list[slurm.SlurmJob]] = {}
            folders: dict[Path, int] = {}
            for num, overrides in enumerate(job_overrides, initial_job_idx):
                job, resources = self._plan(num, list(overrides))
                check_job_folder(job.job_dir, self.config.hydra.sweep.dir)
                if folders.setdefault(job.job_dir, num) != num:  # one folder each: nothing is submitted
                    raise shared_folder(job.job_dir, folders[job.job_dir], num)
                value = finished_value(job.job_dir, job.overrides, self.config.get("optimized_metric"))
                if value is not None:  # a finished job of a sweep run again: not submitted, not touched
                    job.ret = JobReturn(overrides=job.overrides, status=JobStatus.COMPLETED, _return_value=value)
                    done.append(job)
                    continue
                resumes(job.job_dir)
                groups.setdefault(tuple(resources.items()), []).append(job)
            executors = [(self._executor(dict(key)), jobs) for key, jobs in groups.items()]
            for executor, jobs in executors:  # every array is checked before any is submitted
                self._check(executor, len(jobs))
        signals.on_stop(self._cancel_on_stop)
        self._jobs: list[slurm.SlurmJob] = []
        try:
            for executor, jobs in executors:
                state = Singleton.get_state()
                slurm_jobs = executor.map_array(
                    self, [j.overrides for j in jobs], ["hydra.sweep.dir"] * len(jobs), [j.num for j in jobs],
                    [f"job_id_for_{j.num}" for j in jobs], [state] * len(jobs))
                for job, slurm_job in zip(jobs, slurm_jobs, strict=True):
                    job.slurm = slurm_job
                    self._jobs.append(job)
                    log.info("SLURM job %s: sweep job #%d (%s) -> %s", slurm_job.job_id, job.num,
                             " ".join(filter_overrides(job.overrides)), job.job_dir)
            self._watch()
        finally:
            signals.remove_on_stop(self._cancel_on_stop)
        return [job.ret for job in sorted([*done, *self._jobs], key=lambda j: j.num)]

    def _plan(self, num: int, overrides: list[str]) -> tuple[slurm.SlurmJob, dict[str, int | None]]:
        """The job's run directory, and the resources its trainer needs where the launcher says ``auto``."""
        assert self.hydra_context is not None
        job_cfg = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with open_dict(job_cfg.hydra.job):
            job_cfg.hydra.job.num = num
        HydraConfig.instance().set_config(job_cfg)  # the job dir reads ${hydra:runtime.choices...}
        job_dir = Path(str(job_cfg.hydra.sweep.dir)) / str(job_cfg.hydra.sweep.subdir)
        task = OmegaConf.to_container(job_cfg, resolve=False)
        task.pop("hydra")
        needs = slurm.trainer_resources(OmegaConf.create(task))
        resources = {k: needs[k] if self.params.get(k) == slurm.AUTO else self.params.get(k)
                     for k in slurm.RESOURCES}
        HydraConfig.instance().set_config(self.config)
        return slurm.SlurmJob(num, overrides, job_dir), resources

    def _executor(self, resources: dict[str, Any]) -> Any:
        import submitit

        params = {k: v for k, v in self.params.items() if k not in slurm.ZOO_KEYS}
        params.update(resources)
        for key in ("nodes", "tasks_per_node", "gpus_per_node", "cpus_per_task", "timeout_min", "mem_gb",
                    "array_parallelism", "signal_delay_s"):
            value = params.get(key)
            low = 0 if key == "gpus_per_node" else 1
            if value is not None and (not isinstance(value, int) or value < low):
                auto = " (or auto)" if key in slurm.RESOURCES else ""
                raise ConfigError(f"hydra.launcher.{key}={value}: give a whole number of at least "
                                  f"{low}{auto}.")
        if params.get("gpus_per_node") == 0:
            params["gpus_per_node"] = None  # no GPUs: no --gpus-per-node at all
        if params["signal_delay_s"] >= params["timeout_min"] * 60:
            raise ConfigError(
                f"hydra.launcher.signal_delay_s={params['signal_delay_s']} is not shorter than the time limit "
                f"(timeout_min={params['timeout_min']}): SLURM would warn the job before it starts. Give a "
                f"signal_delay_s below {params['timeout_min'] * 60} s, or a longer timeout_min.")
        executor = submitit.AutoExecutor(folder=params.pop("submitit_folder"), cluster="slurm",
                                         slurm_max_num_timeout=params.pop("max_num_timeout"))
        base = {"timeout_min", "cpus_per_task", "gpus_per_node", "tasks_per_node", "mem_gb", "nodes", "name",
                "stderr_to_stdout"}
        executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
        return executor

    @staticmethod
    def _check(executor: Any, count: int) -> None:
        """Raise a one-line ConfigError if sbatch would refuse this array (nothing is submitted)."""
        from submitit.slurm.slurm import _make_sbatch_string

        if shutil.which("sbatch") is None:
            return  # PreflightChecks said so already
        inner = executor._executor
        script = _make_sbatch_string(command="true", folder=inner.folder, map_count=count, **inner.parameters)
        refusal = slurm.sbatch_refusal(script)
        if refusal and "contact slurm controller" in refusal.lower():
            raise ConfigError(f"SLURM's controller does not answer ({refusal}): nothing was submitted. Check that "
                              f"the cluster is up (sinfo), then run the same command again.")
        if refusal:
            raise ConfigError(f"SLURM would refuse the sweep's jobs: {refusal}. Nothing was submitted: check "
                              f"hydra.launcher.partition, the trainer's devices and nodes, and hydra.launcher.* "
                              f"(sinfo lists the partitions).")

    def _watch(self) -> None:
        """Poll squeue until every job has a result or a reason; one line per state change."""
        poll = float(self.params.get("poll_s") or 5)
        open_jobs = list(self._jobs)
        while open_jobs:
            states = slurm.queue_states([str(j.slurm.job_id) for j in open_jobs])
            for job in list(open_jobs):
                state, where = states.get(str(job.slurm.job_id), (None, ""))
                if state is not None:
                    job.gone_since = None
                    if state != job.state and state != "COMPLETING":
                        detail = f" on {where}" if state == "RUNNING" else "" if where in ("", "None") else f" ({where})"
                        log.info("SLURM job %s %s: %s%s", job.slurm.job_id, job.name, state, detail)
                        job.state = state
                    continue
                if self._finish(job):
                    open_jobs.remove(job)
            if open_jobs:
                time.sleep(poll)

    def _finish(self, job: slurm.SlurmJob) -> bool:
        """A job that left the queue: its result, or its failure recorded. False while its result may still come."""
        from submitit.core.utils import pickle_load

        paths = job.slurm.paths
        if paths.result_pickle.is_file():
            outcome, value = pickle_load(paths.result_pickle)
            if outcome == "success":
                job.ret = value
                done = rundir.status(job.job_dir) == "finished"
                result = "" if done else f" without a result ({job.job_dir / ERROR_FILE})"
                log.info("SLURM job %s %s: COMPLETED%s", job.slurm.job_id, job.name, result)
                return True
            reason = f"raised: {value.strip().splitlines()[-1]}"
            state = "FAILED"
        else:
            state, code = slurm.final_state(str(job.slurm.job_id))
            if state in slurm.WAITING:
                return False
            now = time.monotonic()
            job.gone_since = job.gone_since or now
            if state == "COMPLETED" and now - job.gone_since < slurm.GRACE_S:
                return False  # the result file may not be visible yet
            last = slurm.last_error_line(paths.stderr, paths.stdout)
            reason = f"{state} (exit {code}) without a result: {last}"
        log.error("SLURM job %s %s FAILED: %s -- log %s", job.slurm.job_id, job.name, reason, paths.stderr)
        if rundir.status(job.job_dir) != "finished":
            record_failure(job.job_dir, f"SLURM job {job.slurm.job_id} {reason} (log: {paths.stderr})")
        job.ret = JobReturn(overrides=job.overrides, status=JobStatus.COMPLETED, _return_value=worst_value())
        return True

    def _cancel_on_stop(self) -> None:
        """SIGTERM/SIGINT to the sweep: cancel its jobs and wait (up to a minute) until they have left the queue."""
        jobs = [str(j.slurm.job_id) for j in getattr(self, "_jobs", []) if j.slurm is not None and j.ret is None]
        if not jobs:
            return
        log.error("Cancelling the sweep's SLURM jobs: %s", " ".join(jobs))
        slurm.run_command(["scancel", *jobs])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and slurm.queue_states(jobs).keys() & set(jobs):
            time.sleep(1)
