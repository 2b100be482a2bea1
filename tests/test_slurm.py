"""Sweeps and runs on a real SLURM cluster (scripts/slurm_local.sh: one controller, nodes n1 and n2).

Each test drives real sbatch, srun, squeue, scancel and scontrol. They skip where no cluster runs, and fail
instead in CI (ZOO_SLURM_REQUIRED=1). They share the cluster, so they run one after another (xdist group).
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.runs import ROOT, wait_for_marker

pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.xdist_group("slurm"),
              pytest.mark.usefixtures("slurm_cluster")]

# Three short epochs of logistic regression, two validation and test batches (a signal can land on the first).
RUN = ["model=logreg", "data=mnist", "trainer.max_epochs=3", "trainer.limit_train_batches=2",
       "trainer.limit_val_batches=2", "trainer.limit_test_batches=2", "data.eval_batch_size=50",
       "data.val_size=100", "data.download=false", "trainer.enable_model_summary=false",
       "callbacks.progress_bar.refresh_rate=0", "extras.print_config=false"]
SLURM = ["hydra/launcher=slurm", "hydra.launcher.poll_s=1", "hydra.launcher.timeout_min=10",
         "hydra.launcher.signal_delay_s=60"]


def train_py(*args: str, data_dir: Path, cwd: Path, background: bool = False,
             timeout: float = 600) -> subprocess.CompletedProcess | subprocess.Popen:
    command = [sys.executable, str(ROOT / "train.py"), *args, f"paths.data_dir={data_dir}",
               f"paths.log_dir={cwd / 'logs'}"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(ROOT)}  # tests.faults in the jobs
    if background:
        return subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def out(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout + proc.stderr


def metrics(run_dir: Path, *drop: str) -> dict[str, float]:
    values = json.loads((run_dir / "metrics.json").read_text())
    for key in ("fit_seconds", "requeues", *drop):
        values.pop(key, None)
    return values


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data_dir) -> dict[int, dict[str, float]]:
    """Uninterrupted local runs of RUN for seeds 1 and 2: what every interrupted SLURM job must end with."""
    cwd = tmp_path_factory.mktemp("reference")
    proc = train_py("-m", *RUN, "seed=1,2", f"hydra.sweep.dir={cwd / 'sweep'}", data_dir=data_dir, cwd=cwd)
    assert proc.returncode == 0, out(proc)[-3000:]
    return {seed: metrics(cwd / "sweep" / f"{seed - 1}_logreg-mnist") for seed in (1, 2)}


def slurm(*command: str) -> str:
    done = subprocess.run(list(command), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


# ------------------------------------------------------------------------------------------- 2. sweeps as run
def test_a_sweep_is_one_job_array_with_one_line_per_state_change(tmp_path, data_dir):
    sweep = tmp_path / "sweep"
    proc = train_py("-m", *SLURM, "hydra.launcher.array_parallelism=2", *RUN, "trainer.max_epochs=1",
                    "model=logreg,mlp", "seed=1,2", f"hydra.sweep.dir={sweep}", data_dir=data_dir, cwd=tmp_path)
    text = out(proc)
    assert proc.returncode == 0, text[-3000:]
    jobs = re.findall(r"SLURM job (\d+)_(\d) (\d_\w+-mnist): RUNNING on (n[12])", text)
    assert len({j[0] for j in jobs}) == 1 and sorted(j[1] for j in jobs) == ["0", "1", "2", "3"]  # one array
    assert len(jobs) == 4  # one line per state change: each job ran once
    assert "Bypassing sacct" not in text and "Traceback" not in text
    (script,) = sweep.glob(".submitit/*/*_submission.sh")
    assert "#SBATCH --array=0-3%2" in script.read_text()  # array_parallelism
    for name in ("0_logreg-mnist", "1_logreg-mnist", "2_mlp-mnist", "3_mlp-mnist"):
        assert (sweep / name / "metrics.json").is_file()
        assert (sweep / name / ".hydra" / "config.yaml").is_file()  # the same run folders as the basic launcher
    compare = subprocess.run([sys.executable, "-m", "zoo.report", str(sweep)], cwd=ROOT, capture_output=True,
                             text=True, timeout=300)
    assert compare.returncode == 0, compare.stderr[-3000:]
    assert "logreg" in compare.stdout and "mlp" in compare.stdout


@pytest.mark.parametrize(("overrides", "said"), [
    (["hydra.launcher.partition=nope"], "invalid partition"),
    (["trainer=gpu", "trainer.devices=4"], "SLURM would refuse"),  # the nodes have one GPU (count-only gres) each
    (["hydra.launcher.nodes=3"], "SLURM would refuse"),
    (["hydra.launcher.timeout_min=1"], "signal_delay_s=60 is not shorter than the time limit"),
    (["hydra.launcher.cpus_per_task=0"], "hydra.launcher.cpus_per_task=0: give a whole number"),
    (["hydra.sweep.subdir=${model_name}"], "gives jobs 0 and 1 the same folder"),
], ids=["partition", "gpus", "nodes", "signal-delay", "cpus", "one-folder-for-two-jobs"])
def test_a_value_sbatch_would_refuse_is_one_line_before_anything_is_submitted(tmp_path, data_dir, overrides, said):
    sweep = tmp_path / "sweep"
    proc = train_py("-m", *SLURM, *RUN, *overrides, "seed=1,2", f"hydra.sweep.dir={sweep}", data_dir=data_dir,
                    cwd=tmp_path)
    text = out(proc)
    assert proc.returncode == 2, text[-3000:]
    assert said.lower() in text.lower() and "Traceback" not in text
    assert not (sweep / ".submitit").exists()  # nothing was submitted


# ----------------------------------------------------------------------------- 3. no hang, no silent pass
def failure_sweep(tmp_path: Path, data_dir: Path) -> None:
    """A sweep of five jobs: one good, one raising, one ending without a result, one over its memory, one cancelled."""
    sweep, marker = tmp_path / "sweep", tmp_path / "paused"
    kinds = "none,raise,exit0,oom,pause-fit"
    proc = train_py("-m", *SLURM, "hydra.launcher.mem_gb=1", *RUN, "+callbacks.fault._target_=tests.faults.Fault",
                    f"+callbacks.fault.kind={kinds}", f"+callbacks.fault.marker={marker}", "seed=1",
                    f"hydra.sweep.dir={sweep}", data_dir=data_dir, cwd=tmp_path, background=True)
    job_id = wait_for_marker(marker, proc).split()[0]
    slurm("scancel", job_id)  # the paused job
    cancelled = time.monotonic()
    text = proc.communicate(timeout=300)[0]
    assert time.monotonic() - cancelled < 120  # reported within two minutes of leaving the queue
    assert proc.returncode == 1, text[-3000:]
    jobs = {p.name.split("_")[0]: p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith(".")}
    assert (jobs["0"] / "metrics.json").is_file()  # the good job's result stays intact
    reasons = {k: (jobs[k] / "error.txt").read_text() for k in ("1", "2", "3", "4")}
    assert "Crash: a fault in training" in reasons["1"]
    assert "COMPLETED" in reasons["2"] and "without a result" in reasons["2"]
    assert "OUT_OF_MEMORY" in reasons["3"] or "memory" in reasons["3"].lower()  # cgroup, or OverMemoryKill
    assert "CANCELLED" in reasons["4"] and job_id in reasons["4"]
    assert "Sweep finished with 4 FAILED job(s) of 5" in text
    for k in ("2", "3", "4"):  # with the job id, the log path and the last error line
        assert re.search(rf"SLURM job \d+_{k} {jobs[k].name} FAILED: .* -- log .*_log\.err", text), text[-3000:]


def test_failed_cancelled_oom_and_resultless_jobs_are_reported_and_the_rest_kept(tmp_path, data_dir, slurm_cluster):
    """With accounting (sacct), and without: .ci/run runs this test again on the cluster started --no-accounting,
    where sacct fails as on clusters that keep no accounting and the launcher reads squeue and scontrol."""
    sacct = subprocess.run(["sacct", "-n"], capture_output=True)
    assert (sacct.returncode == 0) == slurm_cluster.accounting
    failure_sweep(tmp_path, data_dir)


# ------------------------------------------------------------------- 4. preemption and time limits, same numbers
MOMENTS = ["pause-start", "pause-sanity", "pause-fit", "pause-validate", "pause-test"]


@pytest.mark.parametrize(("how", "moments"), [("scancel --signal=USR1", MOMENTS), ("scontrol requeue", ["pause-fit"])])
def test_a_job_signalled_at_any_moment_is_requeued_and_ends_with_the_same_numbers(tmp_path, data_dir, reference,
                                                                                  how, moments):
    sweep = tmp_path / "sweep"
    markers = {m: tmp_path / f"paused-{m}" for m in moments}
    proc = train_py("-m", *SLURM, *RUN, "+callbacks.fault._target_=tests.faults.Fault",
                    f"+callbacks.fault.kind={','.join(moments)}", f"+callbacks.fault.marker={tmp_path}/paused-"
                    + "${callbacks.fault.kind}", "seed=1", f"hydra.sweep.dir={sweep}", data_dir=data_dir,
                    cwd=tmp_path, background=True)
    for marker in markers.values():
        job_id = wait_for_marker(marker, proc, seconds=400).split()[0]
        slurm(*how.split(), job_id)
    text = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, text[-3000:]
    for i, moment in enumerate(moments):
        run = sweep / f"{i}_logreg-mnist"
        assert json.loads((run / "metrics.json").read_text())["requeues"] == 1, moment
        assert metrics(run) == reference[1], moment


def test_a_job_signalled_after_its_metrics_keeps_them(tmp_path, data_dir, reference):
    sweep, marker = tmp_path / "sweep", tmp_path / "paused"
    proc = train_py("-m", *SLURM, *RUN, "seed=1", "+hydra.callbacks.pause._target_=tests.faults.PauseOnJobEnd",
                    f"+hydra.callbacks.pause.marker={marker}", f"hydra.sweep.dir={sweep}", data_dir=data_dir,
                    cwd=tmp_path, background=True)
    job_id = wait_for_marker(marker, proc).split()[0]
    run = sweep / "0_logreg-mnist"
    before = (run / "metrics.json").read_bytes()
    slurm("scancel", "--signal=USR1", job_id)
    text = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, text[-3000:]
    assert (run / "metrics.json").read_bytes() == before and metrics(run) == reference[1]


def test_a_real_time_limit_requeues_and_finishes(tmp_path, data_dir, reference):
    """--time=3 with USR1 120 s before it: the paused job is requeued by the signal and resumes."""
    sweep, marker = tmp_path / "sweep", tmp_path / "paused"
    proc = train_py("-m", *SLURM, "hydra.launcher.timeout_min=3", "hydra.launcher.signal_delay_s=120", *RUN,
                    "+callbacks.fault._target_=tests.faults.Fault", "+callbacks.fault.kind=pause-fit",
                    "+callbacks.fault.seconds=170", f"+callbacks.fault.marker={marker}", "seed=2",
                    f"hydra.sweep.dir={sweep}", data_dir=data_dir, cwd=tmp_path, background=True)
    text = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, text[-3000:]
    run = sweep / "0_logreg-mnist"
    assert json.loads((run / "metrics.json").read_text())["requeues"] == 1
    assert metrics(run) == reference[2]
    assert "requeued it (requeue 1 of at most 3)" in (next(sweep.glob(".submitit/*/*_log.out"))).read_text()


def test_past_max_num_timeout_the_job_fails_with_a_hint_and_rerunning_the_sweep_finishes_it(tmp_path, data_dir,
                                                                                            reference):
    sweep, marker = tmp_path / "sweep", tmp_path / "paused"
    command = ["-m", *SLURM, "hydra.launcher.max_num_timeout=0", *RUN, "+callbacks.fault._target_=tests.faults.Fault",
               "+callbacks.fault.kind=pause-fit", f"+callbacks.fault.marker={marker}", "seed=1",
               f"hydra.sweep.dir={sweep}"]
    proc = train_py(*command, data_dir=data_dir, cwd=tmp_path, background=True)
    job_id = wait_for_marker(marker, proc).split()[0]
    slurm("scancel", "--signal=USR1", job_id)
    text = proc.communicate(timeout=600)[0]
    assert proc.returncode == 1, text[-3000:]
    assert "requeued 0 time(s) already (max_requeues=0)" in text or "FAILED" in text
    assert f"Finish the sweep with the same command plus hydra.sweep.dir={sweep}" in text
    run = sweep / "0_logreg-mnist"
    assert (run / "checkpoints" / "last.ckpt").is_file() and not (run / "metrics.json").exists()
    again = train_py(*command, data_dir=data_dir, cwd=tmp_path)
    assert again.returncode == 0, out(again)[-3000:]
    assert metrics(run) == reference[1]


# ---------------------------------------------------------------------------------------- 5. multi-node DDP
DDP = ["trainer=ddp_cpu", "trainer.devices=1", "trainer.num_nodes=2"]


@pytest.fixture(scope="module")
def ddp_reference(tmp_path_factory, data_dir) -> dict[str, float]:
    """The same run as two processes on one node (trainer.devices=2), started without SLURM."""
    cwd = tmp_path_factory.mktemp("ddp_reference")
    proc = train_py(*RUN, "seed=1", "trainer=ddp_cpu", "trainer.devices=2", f"hydra.run.dir={cwd / 'run'}",
                    data_dir=data_dir, cwd=cwd, timeout=900)
    assert proc.returncode == 0, out(proc)[-3000:]
    return metrics(cwd / "run")


def test_two_node_ddp_through_the_launcher_is_one_run(tmp_path, data_dir, ddp_reference):
    sweep = tmp_path / "sweep"
    proc = train_py("-m", *SLURM, *RUN, *DDP, "seed=1", f"hydra.sweep.dir={sweep}", data_dir=data_dir, cwd=tmp_path)
    text = out(proc)
    assert proc.returncode == 0, text[-3000:]
    (script,) = sweep.glob(".submitit/*/*_submission.sh")
    assert "#SBATCH --nodes=2" in script.read_text() and "#SBATCH --ntasks-per-node=1" in script.read_text()
    assert "#SBATCH --gpus-per-node" not in script.read_text()
    assert [p.name for p in sweep.iterdir() if p.is_dir() and not p.name.startswith(".")] == ["0_logreg-mnist"]
    assert same_run(metrics(sweep / "0_logreg-mnist"), ddp_reference)


def same_run(run: dict[str, float], reference: dict[str, float]) -> bool:
    """Equal metrics; a loss may differ in float32's last digit (gloo sums the ranks' values in another order
    across two nodes than within one)."""
    return run.keys() == reference.keys() and all(
        run[k] == pytest.approx(v, rel=1e-6) if "loss" in k else run[k] == v for k, v in reference.items())


def _sbatch_script(tmp_path: Path, data_dir: Path, *extra: str) -> Path:
    """README's two-node script: one srun task per node, the run directory named by the job."""
    args = " ".join([*RUN, *DDP, "seed=1", f"paths.data_dir={data_dir}", f"paths.log_dir={tmp_path / 'logs'}",
                     "auto_resume=true", *extra])
    script = tmp_path / "ddp.sbatch"
    script.write_text(f"""#!/bin/bash
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --signal=USR1@60
#SBATCH --requeue
#SBATCH --output={tmp_path}/slurm-%j.out
export PYTHONPATH={ROOT}
srun {sys.executable} {ROOT / 'train.py'} {args}
""")
    return script


def _wait_job(job_id: str, seconds: float = 600) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not slurm("squeue", "-h", "-j", job_id).strip():
            break
        time.sleep(1)
    state = re.search(r"JobState=(\S+)", slurm("scontrol", "-o", "show", "job", job_id))
    return state.group(1) if state else "UNKNOWN"


def test_two_node_ddp_from_a_plain_sbatch_script_is_one_run(tmp_path, data_dir, ddp_reference):
    job_id = slurm("sbatch", "--parsable", str(_sbatch_script(tmp_path, data_dir))).strip()
    assert _wait_job(job_id) == "COMPLETED", (tmp_path / f"slurm-{job_id}.out").read_text()[-3000:]
    (run,) = (tmp_path / "logs" / "runs").iterdir()
    assert run.name == f"slurm-{job_id}_logreg-mnist"  # one run directory for both nodes
    assert same_run(metrics(run), ddp_reference)


def test_a_preempted_two_node_job_is_requeued_and_resumes(tmp_path, data_dir, ddp_reference):
    marker = tmp_path / "paused"
    job_id = slurm("sbatch", "--parsable", str(_sbatch_script(
        tmp_path, data_dir, "+callbacks.fault._target_=tests.faults.Fault", "+callbacks.fault.kind=pause-fit",
        f"+callbacks.fault.marker={marker}"))).strip()
    deadline = time.monotonic() + 300
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert marker.exists(), (tmp_path / f"slurm-{job_id}.out").read_text()[-3000:]
    slurm("scancel", "--signal=USR1", job_id)
    assert _wait_job(job_id) == "COMPLETED", (tmp_path / f"slurm-{job_id}.out").read_text()[-3000:]
    (run,) = (tmp_path / "logs" / "runs").iterdir()
    assert json.loads((run / "metrics.json").read_text())["requeues"] == 1
    assert same_run(metrics(run), ddp_reference)


# ------------------------------------------------------------------------------------------- 8. Optuna on SLURM
def test_optuna_trials_run_as_parallel_slurm_jobs_and_a_failed_trial_is_recorded(tmp_path, data_dir):
    sweep = tmp_path / "sweep"
    proc = train_py("hparams_search=logreg", *SLURM, "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=2", *RUN,
                    "trainer.max_epochs=1", "+callbacks.fault._target_=tests.faults.Fault",
                    "+callbacks.fault.kind=none", f"hydra.sweep.dir={sweep}",
                    "+callbacks.crash._target_=tests.faults.CrashOnce", "+callbacks.crash.epoch=0",
                    f"+callbacks.crash.marker={tmp_path / 'crashed'}", data_dir=data_dir, cwd=tmp_path)
    text = out(proc)
    assert proc.returncode == 1, text[-3000:]  # a trial failed: listed, and the search went on
    failed = re.search(r"Sweep finished with (\d) FAILED job\(s\) of 4", text)
    assert failed and int(failed.group(1)) >= 1, text[-3000:]  # (a sampled lr may also diverge: DivergedError)
    assert sum("Crash" in p.read_text() for p in sweep.glob("*/error.txt")) == 1
    assert len({m for m in re.findall(r"SLURM job (\d+)_\d", text)}) == 2  # two arrays of two parallel trials
    assert (sweep / "optimization_results.yaml").is_file()
