"""``hydra/launcher=slurm``: a sweep as one SLURM job array, watched until every job has a result or a reason.

A subclass of hydra-submitit-launcher's ``SlurmLauncher`` that keeps its submission (submitit pickles each job and
``srun`` runs it) and changes what is around it:

- **Resources follow the trainer.** ``nodes``, ``tasks_per_node`` and ``gpus_per_node`` set to ``auto`` come from
  each job's ``trainer.num_nodes``, ``accelerator`` and ``devices``: on GPUs one task per GPU, on CPUs one task per
  DDP process (``trainer=ddp_cpu``) or one task. Jobs that need the same resources form one job array.
- **Checked before anything is submitted.** Each array's sbatch script goes through ``sbatch --test-only``; a value
  sbatch would refuse (a partition, GPUs on a CPU partition, a count, a time) is a one-line ``ConfigError``.
- **Watched with squeue, not only sacct.** One line per job state change. A job that leaves the queue without a
  result (failed, cancelled, out of memory, node lost, killed) is reported with its job id, log and last error
  line, and recorded in ``<job dir>/error.txt``; the sweep then exits 1 (:class:`~hydra_plugins.zoo_hydra.callbacks.FailedJobsReport`).
  A requeued job (time limit, preemption: :mod:`zoo.signals`) is waited for.
- **Stopping the sweep stops its jobs**: SIGTERM or Ctrl-C cancels them and waits until they have left the queue.
"""

import logging
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher import submitit_launcher
from omegaconf import DictConfig, OmegaConf, open_dict

import zoo.signals as signals
from hydra_plugins.zoo_hydra.jobs import ERROR_FILE, finished_value, record_failure, resumes, worst_value
from zoo.errors import ConfigError, reported_as_message

log = logging.getLogger("zoo.slurm")

AUTO = "auto"
RESOURCES = ("nodes", "tasks_per_node", "gpus_per_node")
ZOO_KEYS = ("poll_s",)  # the launcher's own settings, not sbatch's
WAITING = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SUSPENDED",
           "RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING", "RESV_DEL_HOLD", "PREEMPTED"}
GRACE_S = 30.0  # how long a job that left the queue may take to show its result file (shared file systems)


@dataclass
class _Job:
    """One sweep job as submitted: its number, overrides, run directory and SLURM job."""

    num: int
    overrides: list[str]
    job_dir: Path
    slurm: Any = None
    state: str = "SUBMITTING"
    gone_since: float | None = None
    ret: JobReturn | None = None

    @property
    def name(self) -> str:
        return self.job_dir.name


def trainer_resources(job_cfg: DictConfig) -> dict[str, int | None]:
    """``nodes``, ``tasks_per_node`` and ``gpus_per_node`` that a job's trainer settings need."""
    from zoo.run.distributed import device_count, keep_full_batch_on_one_device

    cfg = keep_full_batch_on_one_device(job_cfg.copy())  # one full graph: one device (warned in the job itself)
    t = cfg.trainer
    strategy = t.get("strategy", "auto")
    strategy = strategy.get("_target_", "") if isinstance(strategy, DictConfig) else str(strategy)
    devices = device_count(t.get("devices", 1))
    nodes = int(t.get("num_nodes", 1))
    if str(t.get("accelerator")) in ("gpu", "cuda"):
        if devices is None:
            raise ConfigError(
                f"trainer.devices={t.get('devices')} lets Lightning count the GPUs, but SLURM must be told how many "
                f"to give: set trainer.devices=<GPUs per node> (or hydra.launcher.gpus_per_node=<n>)."
            )
        return {"nodes": nodes, "tasks_per_node": devices, "gpus_per_node": devices}
    tasks = (devices or 1) if "ddp" in strategy.lower() else 1
    return {"nodes": nodes, "tasks_per_node": tasks, "gpus_per_node": None}


def _run(command: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def sbatch_refusal(script: str) -> str | None:
    """What ``sbatch --test-only`` says against ``script`` (one line), or None when sbatch would accept it."""
    with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as f:
        f.write(script)
    try:
        done = _run(["sbatch", "--test-only", f.name])
    finally:
        Path(f.name).unlink()
    if done.returncode == 0:
        return None
    lines = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()] or lines or ["(no message)"]
    return errors[-1].replace("sbatch: error: ", "")


def queue_states(array_ids: set[str]) -> dict[str, tuple[str, str]]:
    """``{job id: (state, node or reason)}`` of the jobs of ``array_ids`` still in SLURM's queue (squeue)."""
    if not array_ids:
        return {}
    done = _run(["squeue", "-h", "-r", "-j", ",".join(sorted(array_ids)), "-o", "%i|%T|%N|%r"])
    states = {}
    for line in done.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 4:
            states[parts[0]] = (parts[1], parts[2] or parts[3])
    return states


def final_state(job_id: str) -> tuple[str, str]:
    """``(state, exit code)`` of a job that left the queue: from sacct, else scontrol, else ``UNKNOWN``."""
    done = _run(["sacct", "-n", "-P", "-X", "-j", job_id, "-o", "JobID,State,ExitCode"])
    if done.returncode == 0:
        for line in done.stdout.splitlines():
            parts = line.split("|")
            if len(parts) == 3 and parts[0] == job_id:
                return parts[1].split()[0], parts[2]
    done = _run(["scontrol", "-o", "show", "job", job_id])
    state = re.search(r"JobState=(\S+)", done.stdout)
    code = re.search(r"ExitCode=(\S+)", done.stdout)
    if done.returncode == 0 and state:
        return state.group(1), code.group(1) if code else "?"
    return "UNKNOWN", "?"


def last_error_line(*logs: Path) -> str:
    """The last line of the job's logs that reads as an error (else its last line)."""
    lines = []
    for path in logs:
        if path.is_file():
            lines += [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    pattern = re.compile(r"error|exception|stopped by|killed|cancelled|oom|out.of.memory|time limit|resume", re.I)
    errors = [line for line in lines if pattern.search(line) and "submitit INFO" not in line]
    return (errors or lines or ["(the job wrote no log)"])[-1][:300]


class SlurmLauncher(submitit_launcher.SlurmLauncher):
    """Hydra's submitit SLURM launcher with Zoo's checks, watching and stopping (see the module doc)."""

    def launch(self, job_overrides: Any, initial_job_idx: int) -> list[JobReturn]:

        assert self.config is not None and self.hydra_context is not None
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        done: list[_Job] = []
        with reported_as_message():  # a value sbatch would refuse: one line, exit code 2, nothing submitted
            groups: dict[tuple, list[_Job]] = {}
            for idx, overrides in enumerate(job_overrides):
                job, resources = self._plan(initial_job_idx + idx, list(overrides))
                value = finished_value(job.job_dir, job.overrides, self.config.get("optimized_metric"))
                if value is not None:  # a finished job of a sweep run again: not submitted, not touched
                    job.ret = JobReturn(overrides=job.overrides, status=JobStatus.COMPLETED, _return_value=value)
                    done.append(job)
                    continue
                resumes(job.job_dir)
                groups.setdefault(tuple(sorted(resources.items(), key=lambda kv: kv[0])), []).append(job)
            executors = [(self._executor(dict(key), len(jobs)), jobs) for key, jobs in groups.items()]
            for executor, jobs in executors:  # every array is checked before any is submitted
                self._check(executor, len(jobs))
        hook = self._cancel_on_stop
        signals.on_stop(hook)
        self._jobs: list[_Job] = []
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
            signals.remove_on_stop(hook)
        return [job.ret for job in sorted([*done, *self._jobs], key=lambda j: j.num)]

    def _plan(self, num: int, overrides: list[str]) -> tuple[_Job, dict[str, int | None]]:
        """The job's run directory, and the resources its trainer needs where the launcher says ``auto``."""
        assert self.hydra_context is not None
        job_cfg = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with open_dict(job_cfg.hydra.job):
            job_cfg.hydra.job.num = num
        HydraConfig.instance().set_config(job_cfg)  # the job dir reads ${hydra:runtime.choices...}
        job_dir = Path(str(job_cfg.hydra.sweep.dir)) / str(job_cfg.hydra.sweep.subdir)
        task = OmegaConf.to_container(job_cfg, resolve=False)
        task.pop("hydra")
        needs = trainer_resources(OmegaConf.create(task))
        resources = {k: needs[k] if self.params.get(k) == AUTO else self.params.get(k) for k in RESOURCES}
        HydraConfig.instance().set_config(self.config)
        return _Job(num, overrides, job_dir), resources

    def _executor(self, resources: dict[str, Any], count: int) -> Any:
        import submitit

        params = {k: v for k, v in self.params.items() if k not in ZOO_KEYS}
        params.update(resources)
        for key in ("nodes", "tasks_per_node", "gpus_per_node", "cpus_per_task", "timeout_min", "mem_gb",
                    "array_parallelism", "signal_delay_s"):
            value = params.get(key)
            if value is not None and (not isinstance(value, int) or value < (0 if key == "gpus_per_node" else 1)):
                raise ConfigError(f"hydra.launcher.{key}={value}: give a whole number of at least "
                                  f"{0 if key == 'gpus_per_node' else 1}{' (or auto)' if key in RESOURCES else ''}.")
        if params.get("gpus_per_node") == 0:
            params["gpus_per_node"] = None  # no GPUs: no --gpus-per-node at all
        if params["signal_delay_s"] >= params["timeout_min"] * 60:
            raise ConfigError(
                f"hydra.launcher.signal_delay_s={params['signal_delay_s']} is not shorter than the time limit "
                f"(timeout_min={params['timeout_min']}): SLURM would warn the job before it starts. Give a "
                f"signal_delay_s below {params['timeout_min'] * 60} s, or a longer timeout_min."
            )
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
        refusal = sbatch_refusal(script)
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
            arrays = {str(j.slurm.job_id).split("_")[0] for j in open_jobs}
            states = queue_states(arrays)
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

    def _finish(self, job: _Job) -> bool:
        """A job that left the queue: its result, or its failure recorded. False while its result may still come."""
        from submitit.core.utils import pickle_load

        paths = job.slurm.paths
        if paths.result_pickle.is_file():
            outcome, value = pickle_load(paths.result_pickle)
            if outcome == "success":
                job.ret = value
                done = (job.job_dir / "metrics.json").is_file()
                log.info("SLURM job %s %s: %s", job.slurm.job_id, job.name,
                         "COMPLETED" if done else f"COMPLETED without a result ({job.job_dir / ERROR_FILE})")
                return True
            reason = f"raised: {value.strip().splitlines()[-1]}"
            state = "FAILED"
        else:
            state, code = final_state(str(job.slurm.job_id))
            if state in WAITING:
                return False
            now = time.monotonic()
            job.gone_since = job.gone_since or now
            if state == "COMPLETED" and now - job.gone_since < GRACE_S:
                return False  # the result file may not be visible yet
            reason = f"{state} (exit {code}) without a result: {last_error_line(paths.stderr, paths.stdout)}"
        log.error("SLURM job %s %s FAILED: %s -- log %s", job.slurm.job_id, job.name, reason, paths.stderr)
        if not (job.job_dir / "metrics.json").is_file():
            record_failure(job.job_dir, f"SLURM job {job.slurm.job_id} {reason} (log: {paths.stderr})")
        job.ret = JobReturn(overrides=job.overrides, status=JobStatus.COMPLETED, _return_value=worst_value())
        return True

    def _cancel_on_stop(self) -> None:
        """SIGTERM/SIGINT to the sweep: cancel its jobs and wait (up to a minute) until they have left the queue."""
        jobs = [str(j.slurm.job_id) for j in getattr(self, "_jobs", []) if j.slurm is not None and j.ret is None]
        if not jobs:
            return
        log.error("Cancelling the sweep's SLURM jobs: %s", " ".join(jobs))
        _run(["scancel", *jobs])
        arrays = {j.split("_")[0] for j in jobs}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(j in queue_states(arrays) for j in jobs):
            time.sleep(1)
