"""Helpers for tests marked ``slurm``, which need a real SLURM cluster: the local one of
``scripts/slurm_local.sh`` (a controller and two nodes, n1 and n2, on this machine; see docs/slurm_local.md).

``slurm_cluster`` (a session fixture) skips the test when no such cluster answers, or fails it when the
environment says one must be there (``ZOO_SLURM_REQUIRED=1``, as CI sets it). Use it with
``from tests.slurm import slurm_cluster`` in a conftest or a test module.
"""

import os
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

START_HINT = "run `bash scripts/slurm_local.sh install && bash scripts/slurm_local.sh start`"
NODES = ("n1", "n2")
NODE_READY = {"idle", "mix", "alloc", "comp"}  # sinfo %t; a trailing '*' (not responding), drain... are not
TERMINAL = {
    "BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
    "TIMEOUT",
}


@dataclass(frozen=True)
class SlurmCluster:
    nodes: tuple[str, ...]
    accounting: bool  # slurmdbd behind it: sacct works
    memory: str  # how --mem is enforced: "cgroup" (jobs over it end OUT_OF_MEMORY) or "poll" (FAILED 0:9)


def run(*command: str, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess:
    """Run a SLURM client command; output captured as text."""
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=check)


def _config() -> dict[str, str]:
    out = run("scontrol", "show", "config").stdout
    return dict(m.groups() for m in re.finditer(r"^(\w+)\s*=\s*(.*?)\s*$", out, re.M))


def accounting_on() -> bool:
    """Whether the cluster keeps accounting (slurmdbd): then ``sacct`` knows finished jobs."""
    return "slurmdbd" in _config().get("AccountingStorageType", "")


def memory_enforcement() -> str:
    """"cgroup" when task/cgroup enforces --mem (OUT_OF_MEMORY), else "poll" (OverMemoryKill: FAILED 0:9)."""
    return "cgroup" if "task/cgroup" in _config().get("TaskPlugin", "") else "poll"


def cluster_problem() -> str | None:
    """Why the local cluster cannot be used, or None when n1 and n2 are up."""
    conf = os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf")
    if not Path(conf).exists():  # the clients would retry reading it for a minute
        return f"no {conf}"
    try:
        out = run("sinfo", "-h", "-N", "-o", "%N %t", timeout=20)
    except FileNotFoundError:
        return "sinfo is not installed"
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 20 s"
    except subprocess.CalledProcessError as e:
        return f"sinfo failed: {(e.stderr or e.stdout).strip()[:300]}"
    states = dict(line.split() for line in out.stdout.splitlines() if len(line.split()) == 2)
    bad = {n: states.get(n, "missing") for n in NODES if states.get(n) not in NODE_READY}
    if bad:
        return "nodes not ready: " + ", ".join(f"{n} {s}" for n, s in bad.items())
    return None


@pytest.fixture(scope="session", name="slurm_cluster")  # the name survives `import ... as _alias`
def slurm_cluster() -> SlurmCluster:
    """The local SLURM cluster; skips without one, fails instead when ZOO_SLURM_REQUIRED=1."""
    problem = cluster_problem()
    if problem:
        if os.environ.get("ZOO_SLURM_REQUIRED") == "1":
            pytest.fail(f"ZOO_SLURM_REQUIRED=1 but no SLURM cluster ({problem}): {START_HINT}", pytrace=False)
        pytest.skip(f"no SLURM cluster ({problem}): {START_HINT}")
    return SlurmCluster(nodes=NODES, accounting=accounting_on(), memory=memory_enforcement())


def sbatch(*args: str, cwd: Path | str | None = None) -> str:
    """``sbatch --parsable <args>`` -> the job id."""
    out = subprocess.run(["sbatch", "--parsable", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    if out.returncode:
        raise RuntimeError(f"sbatch {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout.strip().split(";")[0]


def _sacct_states(job_id: str) -> list[str]:
    out = run("sacct", "-j", job_id, "-X", "-n", "-P", "-o", "State").stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]  # "CANCELLED by 0" -> CANCELLED


def _scontrol_states(job_id: str) -> list[str]:
    out = run("scontrol", "-o", "show", "job", job_id, check=False)
    if out.returncode:
        raise LookupError(f"job {job_id} is unknown to slurmctld and there is no accounting: {out.stderr.strip()}")
    return re.findall(r"\bJobState=(\S+)", out.stdout)


def job_states(job_id: str) -> list[str]:
    """Current state of the job (one per task for an array), from sacct when accounting is on."""
    return _sacct_states(job_id) if accounting_on() else _scontrol_states(job_id)


def wait_job(job_id: str, timeout: float = 60) -> str:
    """Wait until the job (every task of an array) has ended; its final state, e.g. "COMPLETED".

    Uses sacct when accounting is on (so the records are there when this returns: they reach slurmdbd a
    second or two after the job ends), else ``scontrol show job`` (kept MinJobAge = 300 s after the end).
    For an array: the state shared by all tasks, else the first one that is not COMPLETED.
    """
    source = _sacct_states if accounting_on() else _scontrol_states
    deadline = time.monotonic() + timeout
    states: list[str] = []
    while time.monotonic() < deadline:
        states = source(job_id)
        if states and all(s in TERMINAL for s in states):
            return next((s for s in states if s != "COMPLETED"), "COMPLETED")
        time.sleep(0.5)
    raise TimeoutError(f"job {job_id} still not finished after {timeout} s: {states}")


def wait_for(predicate: Callable[[], bool], timeout: float = 30, what: str = "condition") -> None:
    """Poll ``predicate()`` every 0.2 s until it is true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)
