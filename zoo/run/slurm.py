"""SLURM from the sweep's side (for ``hydra_plugins/zoo_hydra/slurm.py``): what a job needs, what sbatch would
refuse, and where a submitted job stands."""

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from zoo.errors import ConfigError
from zoo.run.distributed import device_count, keep_full_batch_on_one_device, uses_ddp
from zoo.run.sweep import job_name

AUTO = "auto"
RESOURCES = ("nodes", "tasks_per_node", "gpus_per_node")
ZOO_KEYS = ("poll_s",)  # the launcher's own settings, not sbatch's
WAITING = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SUSPENDED",
           "RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING", "RESV_DEL_HOLD", "PREEMPTED"}
GRACE_S = 30.0  # how long a job that left the queue may take to show its result file (shared file systems)


@dataclass
class SlurmJob:
    """One sweep job as submitted: its number, overrides, run directory and SLURM job."""

    num: int
    overrides: list[str]
    job_dir: Path
    slurm: Any = None
    state: str = "SUBMITTING"
    gone_since: float | None = None
    ret: Any = None  # its hydra.core.utils.JobReturn

    @property
    def name(self) -> str:
        return job_name(self.job_dir)


def trainer_resources(job_cfg: DictConfig) -> dict[str, int | None]:
    """``nodes``, ``tasks_per_node`` and ``gpus_per_node`` that a job's trainer settings need."""
    cfg = keep_full_batch_on_one_device(job_cfg.copy())  # one full graph: one device (warned in the job itself)
    t = cfg.trainer
    devices = device_count(t.get("devices", 1))
    nodes = int(t.get("num_nodes", 1))
    if str(t.get("accelerator")) in ("gpu", "cuda"):
        if devices is None:
            raise ConfigError(
                f"trainer.devices={t.get('devices')} lets Lightning count the GPUs, but SLURM must be told how many "
                f"to give: set trainer.devices=<GPUs per node> (or hydra.launcher.gpus_per_node=<n>).")
        return {"nodes": nodes, "tasks_per_node": devices, "gpus_per_node": devices}
    tasks = (devices or 1) if uses_ddp(t) else 1
    return {"nodes": nodes, "tasks_per_node": tasks, "gpus_per_node": None}


def run_command(command: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def sbatch_refusal(script: str) -> str | None:
    """What ``sbatch --test-only`` says against ``script`` (one line), or None when sbatch would accept it."""
    with tempfile.NamedTemporaryFile("w", suffix=".sh") as f:
        f.write(script)
        f.flush()
        done = run_command(["sbatch", "--test-only", f.name])
    if done.returncode == 0:
        return None
    lines = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()] or lines or ["(no message)"]
    return errors[-1].replace("sbatch: error: ", "")


def queue_states(job_ids: list[str]) -> dict[str, tuple[str, str]]:
    """``{job id: (state, node or reason)}`` of the jobs of ``job_ids``' arrays still in SLURM's queue."""
    arrays = sorted({job.split("_")[0] for job in job_ids})
    if not arrays:
        return {}
    done = run_command(["squeue", "-h", "-r", "-j", ",".join(arrays), "-o", "%i|%T|%N|%r"])
    rows = [line.strip().split("|") for line in done.stdout.splitlines()]
    return {row[0]: (row[1], row[2] or row[3]) for row in rows if len(row) == 4}


def final_state(job_id: str) -> tuple[str, str]:
    """``(state, exit code)`` of a job that left the queue: from sacct, else scontrol, else ``UNKNOWN``."""
    done = run_command(["sacct", "-n", "-P", "-X", "-j", job_id, "-o", "JobID,State,ExitCode"])
    if done.returncode == 0:
        for line in done.stdout.splitlines():
            parts = line.split("|")
            if len(parts) == 3 and parts[0] == job_id:
                return parts[1].split()[0], parts[2]
    done = run_command(["scontrol", "-o", "show", "job", job_id])
    state = re.search(r"JobState=(\S+)", done.stdout)
    code = re.search(r"ExitCode=(\S+)", done.stdout)
    if done.returncode == 0 and state:
        return state.group(1), code.group(1) if code else "?"
    return "UNKNOWN", "?"


def last_error_line(*logs: Path) -> str:
    """The last line that reads as an error in the first of the job's logs that has one (stderr before stdout: a
    path in stdout may contain such a word), else the last line of all."""
    pattern = re.compile(r"error|exception|stopped by|killed|cancelled|oom|out.of.memory|time limit|resume", re.I)
    lines = []
    for path in logs:
        text = path.read_text(errors="replace") if path.is_file() else ""
        found = [line.strip() for line in text.splitlines() if line.strip()]
        errors = [line for line in found if pattern.search(line) and "submitit INFO" not in line]
        if errors:
            return errors[-1][:300]
        lines += found
    return (lines or ["(the job wrote no log)"])[-1][:300]
