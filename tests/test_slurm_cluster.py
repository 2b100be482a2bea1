"""The local SLURM cluster itself (scripts/slurm_local.sh): what the cluster-mode tests rely on.

Skipped without a cluster; with ZOO_SLURM_REQUIRED=1 (CI) they fail instead.
"""

import shlex
import subprocess
import sys

import pytest

from tests.slurm import run, sbatch, wait_for, wait_job

pytestmark = [pytest.mark.slurm, pytest.mark.xdist_group("slurm")]  # one test at a time on the cluster

# A batch script that says "ready", then waits ~8 s for SIGUSR1 in short sleeps (bash runs a trap only
# between commands).
TRAP_USR1 = """#!/bin/bash
trap 'echo got USR1; exit 0' USR1
echo ready
for i in $(seq 40); do sleep 0.2; done
echo no signal
"""


def test_two_nodes_in_cpu_and_gpu_partitions(slurm_cluster):
    out = run("sinfo", "-h", "-N", "-o", "%N %P %G").stdout.split("\n")
    rows = {tuple(line.split()) for line in out if line.strip()}
    assert {("n1", "cpu*", "gpu:1"), ("n2", "cpu*", "gpu:1"), ("n1", "gpu", "gpu:1"), ("n2", "gpu", "gpu:1")} <= rows


def test_two_node_srun_runs_one_task_on_n1_and_one_on_n2(slurm_cluster, tmp_path):
    job = sbatch("-N2", "--ntasks-per-node=1", "-o", "out.txt", "--wrap",
                 'srun bash -c "echo \\$SLURM_NODEID \\$SLURMD_NODENAME"', cwd=tmp_path)
    assert wait_job(job) == "COMPLETED"
    assert sorted((tmp_path / "out.txt").read_text().split("\n")[:-1]) == ["0 n1", "1 n2"]


def test_array_runs_at_most_two_tasks_at_a_time(slurm_cluster, tmp_path):
    job = sbatch("--array=0-3%2", "-o", "task_%a.txt", "--wrap",
                 "echo $(date +%s.%N); sleep 2; echo $(date +%s.%N)", cwd=tmp_path)
    assert wait_job(job) == "COMPLETED"
    spans = [tuple(map(float, (tmp_path / f"task_{i}.txt").read_text().split())) for i in range(4)]
    running = max(sum(start <= t < end for start, end in spans) for t, _ in spans)
    assert 1 <= running <= 2, spans


def test_job_over_its_memory_is_killed_and_reported(slurm_cluster, tmp_path):
    python = shlex.quote(sys.executable)
    job = sbatch("--mem=50M", "-o", "out.txt", "--wrap",
                 f'{python} -c "x = bytearray(500_000_000); import time; time.sleep(5)"', cwd=tmp_path)
    state = wait_job(job)
    if slurm_cluster.memory == "cgroup":
        assert state == "OUT_OF_MEMORY"
    else:  # OverMemoryKill (no usable cgroups): SLURM 22.05 ends the job FAILED, killed by SIGKILL
        assert state == "FAILED"
        assert "Exceeded job memory limit" in (tmp_path / "out.txt").read_text()


@pytest.mark.parametrize("option", ["--batch", "--full"])
def test_scancel_signal_reaches_the_batch_script(slurm_cluster, tmp_path, option):
    (tmp_path / "job.sh").write_text(TRAP_USR1)
    job = sbatch("-o", "out.txt", "job.sh", cwd=tmp_path)
    out = tmp_path / "out.txt"
    wait_for(lambda: out.exists() and "ready" in out.read_text(), what="the job to start")
    run("scancel", option, "--signal=USR1", job)
    assert wait_job(job) == "COMPLETED"
    assert "got USR1" in out.read_text()


def test_plain_scancel_signal_skips_the_batch_script(slurm_cluster, tmp_path):
    # SLURM signals only the job's steps unless told --batch or --full: a bare batch script never sees it.
    (tmp_path / "job.sh").write_text(TRAP_USR1)
    job = sbatch("-o", "out.txt", "job.sh", cwd=tmp_path)
    out = tmp_path / "out.txt"
    wait_for(lambda: out.exists() and "ready" in out.read_text(), what="the job to start")
    run("scancel", "--signal=USR1", job)
    assert wait_job(job) == "COMPLETED"
    assert out.read_text().split() == ["ready", "no", "signal"]


def test_requeued_job_runs_again(slurm_cluster, tmp_path):
    job = sbatch("--requeue", "--open-mode=append", "-o", "out.txt", "--wrap",
                 "echo run ${SLURM_RESTART_COUNT:-0}; sleep 4", cwd=tmp_path)
    out = tmp_path / "out.txt"
    wait_for(lambda: out.exists() and "run 0" in out.read_text(), what="the first run")
    run("scontrol", "requeue", job)
    # A requeued job may start again only after AuthInfo's cred_expire (10 s in slurm_local.sh's config), and a
    # loaded machine schedules it later still: how long it takes is benchmarks' business, that it runs is ours.
    wait_for(lambda: "run 1" in out.read_text(), timeout=180, what="the second run")
    assert wait_job(job, timeout=120) == "COMPLETED"


def test_sacct_knows_finished_jobs_only_with_accounting(slurm_cluster, tmp_path):
    job = sbatch("-o", "/dev/null", "--wrap", "exit 3", cwd=tmp_path)
    assert wait_job(job) == "FAILED"
    sacct = subprocess.run(["sacct", "-j", job, "-X", "-n", "-P", "-o", "JobID,State,ExitCode"],
                           capture_output=True, text=True, timeout=30)
    if slurm_cluster.accounting:
        assert sacct.stdout.split() == [f"{job}|FAILED|3:0"]
    else:
        assert sacct.returncode != 0
        assert "accounting storage is disabled" in sacct.stderr + sacct.stdout
