"""Helpers for tests marked ``slurm``, which need a real SLURM cluster: the project's own local one, started
by ``scripts/slurm_local.sh`` (a controller and two nodes, n1 and n2, on this machine; see docs/slurm_local.md).

The cluster is identified positively, never taken because some ``sinfo`` answers: ``scontrol show config`` must
report the ClusterName and the StateSaveLocation that ``scripts/slurm_local.sh`` writes (``zoo_local``,
``$ZOO_SLURM_DIR/spool/ctld``, default ``/tmp/zoo-slurm``). Any other cluster (a real one on a login node, a lab
cluster with nodes also called n1 and n2) makes every SLURM test skip, naming the cluster, before anything is
submitted. Whoever keeps a test cluster of their own with nodes n1 and n2 opts in by naming it:
``ZOO_SLURM_CLUSTER=<its ClusterName>``.

``slurm_cluster`` (a session fixture, the one detection of every SLURM test) skips the test when the cluster is
not there, or fails it when the environment says one must be there (``ZOO_SLURM_REQUIRED=1``, as CI sets it).
Use it with ``from tests.slurm import slurm_cluster`` in a conftest or a test module.
"""

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

START_HINT = "run `bash scripts/slurm_local.sh install && bash scripts/slurm_local.sh start`"
LOCAL_CLUSTER = "zoo_local"  # ClusterName written by scripts/slurm_local.sh
OPT_IN = "ZOO_SLURM_CLUSTER"  # names another cluster the tests may use
NODES = ("n1", "n2")
NODE_READY = {"idle", "mix", "alloc", "comp"}  # sinfo %t; a trailing '*' (not responding), drain... are not
TERMINAL = {
    "BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
    "TIMEOUT",
}


def local_state_dir() -> Path:
    """The state folder of scripts/slurm_local.sh: ``$ZOO_SLURM_DIR``, default ``/tmp/zoo-slurm``."""
    return Path(os.environ.get("ZOO_SLURM_DIR") or "/tmp/zoo-slurm")


@dataclass(frozen=True)
class SlurmCluster:
    nodes: tuple[str, ...]
    accounting: bool  # slurmdbd behind it: sacct works
    memory: str  # how --mem is enforced: "cgroup" (jobs over it end OUT_OF_MEMORY) or "poll" (FAILED 0:9)


def run(*command: str, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess:
    """Run a SLURM client command; output captured as text."""
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=check)


def _config() -> dict[str, str]:
    """``scontrol show config`` as a dict (``ClusterName``, ``StateSaveLocation``, ``TaskPlugin``, ...)."""
    out = run("scontrol", "show", "config").stdout
    return dict(m.groups() for m in re.finditer(r"^(\w+)\s*=\s*(.*?)\s*$", out, re.M))


def accounting_on() -> bool:
    """Whether the cluster keeps accounting (slurmdbd): then ``sacct`` knows finished jobs."""
    return "slurmdbd" in _config().get("AccountingStorageType", "")


def memory_enforcement() -> str:
    """"cgroup" when task/cgroup enforces --mem (OUT_OF_MEMORY), else "poll" (OverMemoryKill: FAILED 0:9)."""
    return "cgroup" if "task/cgroup" in _config().get("TaskPlugin", "") else "poll"


def cluster_problem() -> str | None:
    """Why the tests must not use the SLURM cluster the clients talk to, or None when it is the project's own
    local cluster (or the one ``ZOO_SLURM_CLUSTER`` names) and its nodes n1 and n2 are up."""
    wanted = os.environ.get(OPT_IN, "").strip()
    state = local_state_dir()
    if not wanted and not (state / "etc" / "slurm.conf").is_file():  # nothing to ask: skip without a client call
        return f"the project's local cluster is not set up ({state / 'etc' / 'slurm.conf'} does not exist)"
    if shutil.which("scontrol") is None or shutil.which("sinfo") is None:
        return "the SLURM clients (scontrol, sinfo) are not installed"
    client_conf = os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf")
    if not Path(client_conf).exists():  # the clients would retry reading it for a minute
        return f"no {client_conf} (the config the SLURM clients read; `slurm_local.sh start` links it)"
    try:
        config = _config()
    except subprocess.TimeoutExpired:
        return "scontrol show config did not answer within 30 s"
    except subprocess.CalledProcessError as e:
        return f"scontrol show config failed: {(e.stderr or e.stdout).strip()[:300]}"
    name = config.get("ClusterName", "?")
    if wanted:
        if name != wanted:
            return f"the cluster answering is {name!r}, not {wanted!r} ({OPT_IN})"
    elif name != LOCAL_CLUSTER or config.get("StateSaveLocation") != str(state / "spool" / "ctld"):
        return (f"the cluster answering is {name!r} (state in {config.get('StateSaveLocation', '?')}), not the "
                f"project's local cluster {LOCAL_CLUSTER!r} (state in {state / 'spool' / 'ctld'}); nothing is "
                f"submitted to another cluster unless {OPT_IN}={name} names it")
    try:
        out = run("sinfo", "-h", "-N", "-o", "%N %t", timeout=20)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 20 s"
    except subprocess.CalledProcessError as e:
        return f"sinfo failed: {(e.stderr or e.stdout).strip()[:300]}"
    states = dict(line.split() for line in out.stdout.splitlines() if len(line.split()) == 2)
    bad = {n: states.get(n, "missing") for n in NODES if states.get(n) not in NODE_READY}
    if bad:
        return f"cluster {name!r}: nodes not ready: " + ", ".join(f"{n} {s}" for n, s in bad.items())
    return None


@pytest.fixture(scope="session", name="slurm_cluster")  # the name survives `import ... as _alias`
def slurm_cluster() -> SlurmCluster:
    """The project's local SLURM cluster; skips without it, fails instead when ZOO_SLURM_REQUIRED=1."""
    problem = cluster_problem()
    if problem:
        if os.environ.get("ZOO_SLURM_REQUIRED") == "1":
            pytest.fail(f"ZOO_SLURM_REQUIRED=1 but no usable SLURM cluster ({problem}): {START_HINT}",
                        pytrace=False)
        pytest.skip(f"no usable SLURM cluster ({problem}): {START_HINT}")
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
