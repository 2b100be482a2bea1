"""A sweep's record is never rewritten: re-running it finishes it, and stopping it stops it (basic and joblib).

The SLURM launcher is held to the same cases in tests/test_slurm.py, on a real cluster.
"""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.runs import ROOT, TINY, wait_for_marker

LAUNCHERS = {"basic": [], "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
             "slurm": ["hydra/launcher=slurm", "hydra.launcher.poll_s=1"]}
ON_SLURM = [pytest.mark.slurm, pytest.mark.xdist_group("slurm")]  # the local cluster, one test at a time
PARAMS = ["basic", "joblib", pytest.param("slurm", marks=ON_SLURM)]
SWEEP = ["-m", "model=logreg", "data=mnist", "seed=1,2", *TINY, "trainer.max_epochs=3", "extras.print_config=false"]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with its content's hash (and its modification time)."""
    return {str(p.relative_to(folder)): f"{hashlib.md5(p.read_bytes()).hexdigest()} {p.stat().st_mtime_ns}"
            for p in sorted(folder.rglob("*")) if p.is_file()}


def sweep(sweep_dir: Path, data_dir: Path, *overrides: str, launcher: str = "basic", background: bool = False,
          timeout: float = 600) -> subprocess.CompletedProcess | subprocess.Popen:
    command = [sys.executable, str(ROOT / "train.py"), *SWEEP, *LAUNCHERS[launcher], *overrides,
               f"paths.data_dir={data_dir}", f"paths.log_dir={sweep_dir.parent / 'logs'}",
               f"hydra.sweep.dir={sweep_dir}"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(ROOT)}  # tests.faults in SLURM jobs
    if background:  # SIGINT as a terminal delivers it (see tests/test_run_safety.py)
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def text(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout + proc.stderr


def metrics(job_dir: Path) -> dict[str, float]:
    values = json.loads((job_dir / "metrics.json").read_text())
    values.pop("fit_seconds")
    return values


@pytest.mark.slow
@pytest.mark.parametrize("launcher", PARAMS)
def test_rerunning_a_sweep_finishes_it_and_touches_no_finished_job(tmp_path, data_dir, launcher, request):
    if launcher == "slurm":
        request.getfixturevalue("slurm_cluster")
    crash = ["+callbacks.crash._target_=tests.faults.CrashOnce", "+callbacks.crash.epoch=2",
             f"+callbacks.crash.marker={tmp_path}/crashed_" + "${seed}"]
    (tmp_path / "crashed_1").write_text("seed 1 never crashes")
    sweep_dir = tmp_path / "sweep"
    first = sweep(sweep_dir, data_dir, *crash, launcher=launcher)
    out = text(first)
    assert first.returncode == 1, out[-3000:]  # seed 2 crashed at the start of epoch 2
    assert "Sweep finished with 1 FAILED job(s) of 2" in out and "1_logreg-mnist: error: Crash" in out
    assert f"Finish the sweep with the same command plus hydra.sweep.dir={sweep_dir}" in out
    done, stopped = sweep_dir / "0_logreg-mnist", sweep_dir / "1_logreg-mnist"
    assert (stopped / "checkpoints" / "last.ckpt").is_file() and not (stopped / "metrics.json").exists()
    before = snapshot(done)

    second = sweep(sweep_dir, data_dir, *crash, launcher=launcher)  # the same command again
    out = text(second)
    assert second.returncode == 0, out[-3000:]
    assert "Sweep job 0_logreg-mnist is done" in out and "Sweep job 1_logreg-mnist resumes" in out
    assert snapshot(done) == before  # not one byte, .hydra/ and train.log included
    assert not (stopped / "error.txt").exists() and len(list(stopped.glob("error_*.txt"))) == 1  # kept beside
    assert len(list((stopped / ".hydra").glob("resumed_*/overrides.yaml"))) == 1  # the first record kept

    reference = tmp_path / "reference"  # the same sweep, never interrupted
    (tmp_path / "crashed_2").write_text("")
    assert sweep(reference, data_dir, *crash, launcher=launcher).returncode == 0
    assert metrics(stopped) == metrics(reference / "1_logreg-mnist")
    assert metrics(done) == metrics(reference / "0_logreg-mnist")

    finished = snapshot(sweep_dir)
    third = sweep(sweep_dir, data_dir, *crash, launcher=launcher)  # finished: nothing to do, nothing written
    assert third.returncode == 0, text(third)[-3000:]
    assert snapshot(sweep_dir) == finished  # the sweep's own record (multirun.yaml) included


@pytest.mark.slow
@pytest.mark.parametrize(("change", "named"), [
    (["trainer.max_epochs=4"], "trainer.max_epochs: 3 -> 4"),
    (["model.optimizer.lr=0.5"], "model.optimizer.lr: <unset> -> 0.5"),
    (["seed=1,2,3"], "seed: 1,2 -> 1,2,3"),
    (["callbacks=early_stopping"], "callbacks: <unset> -> early_stopping"),  # a group that selects and stops
    (["hydra.sweep.subdir=${hydra.job.num}"],  # the same jobs into other folders: each would run twice
     "hydra.sweep.subdir: ${hydra.job.num}_${model_name}-${data_name} -> ${hydra.job.num}"),
], ids=["other-value", "new-key", "other-grid", "other-callbacks", "other-job-folders"])
def test_another_command_into_a_sweep_folder_is_refused_before_any_job(tmp_path, data_dir, change, named):
    sweep_dir = tmp_path / "sweep"
    assert sweep(sweep_dir, data_dir).returncode == 0
    before = snapshot(sweep_dir)
    other = sweep(sweep_dir, data_dir, *change)
    out = text(other)
    assert other.returncode == 2, out[-3000:]
    assert "holds another sweep" in out and named in out
    assert "Launching" not in out and snapshot(sweep_dir) == before


@pytest.mark.slow
def test_a_rerun_that_changes_only_what_is_shown_keeps_the_finished_jobs(tmp_path, data_dir):
    sweep_dir = tmp_path / "sweep"
    assert sweep(sweep_dir, data_dir).returncode == 0
    jobs = {name: snapshot(sweep_dir / name) for name in ("0_logreg-mnist", "1_logreg-mnist")}
    again = sweep(sweep_dir, data_dir, "extras.quiet=true", "logger=csv")
    out = text(again)
    assert again.returncode == 0, out[-3000:]
    assert all(f"Sweep job {name} is done" in out for name in jobs) and "other settings" not in out
    assert {name: snapshot(sweep_dir / name) for name in jobs} == jobs


@pytest.mark.slow
def test_an_evaluation_sweep_names_no_model_it_did_not_test_and_finishes_on_a_rerun(tmp_path, data_dir):
    """``eval.py -m ckpt_path=a,b``: a job folder named after the command's default model (mlp) would mislabel the
    logreg checkpoint it tested."""
    assert sweep(tmp_path / "trained", data_dir).returncode == 0  # logreg, seeds 1 and 2
    runs = ",".join(str(tmp_path / "trained" / name) for name in ("0_logreg-mnist", "1_logreg-mnist"))
    command = [sys.executable, str(ROOT / "eval.py"), "-m", f"ckpt_path={runs}", f"paths.data_dir={data_dir}",
               f"paths.log_dir={tmp_path / 'logs'}", "data.download=false", f"hydra.sweep.dir={tmp_path / 'evals'}"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    first = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, text(first)[-3000:]
    assert sorted(p.name for p in (tmp_path / "evals").iterdir()) == ["0", "1", "multirun.yaml"]
    assert "logreg on mnist (seed 1)" in text(first) and "logreg on mnist (seed 2)" in text(first)
    before = snapshot(tmp_path / "evals")
    again = subprocess.run([*command, "extras.quiet=true"], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0 and "Sweep job 1 is done" in text(again), text(again)[-3000:]
    assert snapshot(tmp_path / "evals") == before


@pytest.mark.slow
def test_a_run_or_evaluation_into_a_sweeps_folder_is_refused(tmp_path, data_dir):
    """A single run never writes into a sweep's folder, nor into a new folder in it (it would join its jobs)."""
    sweep_dir = tmp_path / "sweep"
    assert sweep(sweep_dir, data_dir).returncode == 0
    failed = sweep_dir / "1_logreg-mnist"  # as a job refused before training leaves it
    for kept in ("checkpoints", "metrics.json"):
        (shutil.rmtree if kept == "checkpoints" else Path.unlink)(failed / kept)
    (failed / "error.txt").write_text("overrides: seed=2\nerror: ConfigError: ...\n")
    before = snapshot(sweep_dir)
    job = ["model=logreg", "data=mnist", *TINY]
    for script, overrides, where, said in [
        ("train.py", job, sweep_dir, "holds a sweep or other runs (multirun.yaml)"),
        ("train.py", job, sweep_dir / "extra", "lies in the sweep folder"),
        ("eval.py", [f"ckpt_path={sweep_dir / '0_logreg-mnist'}"], sweep_dir / "extra", "lies in the sweep folder"),
        ("train.py", [*job, "seed=5"], failed, "is one of its jobs with nothing to resume"),  # its record: seed=2
    ]:
        done = subprocess.run([sys.executable, str(ROOT / script), *overrides, f"paths.data_dir={data_dir}",
                               "data.download=false", f"hydra.run.dir={where}"], cwd=ROOT, capture_output=True,
                              text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"}, timeout=300)
        assert done.returncode == 2 and said in text(done), text(done)[-3000:]
        assert snapshot(sweep_dir) == before and not (sweep_dir / "extra").exists()


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["basic", "joblib"])  # slurm: refused before submitting (tests/test_slurm.py)
def test_two_jobs_that_would_share_a_folder_stop_the_sweep(tmp_path, data_dir, launcher):
    """``hydra.sweep.subdir=${model_name}`` with ``seed=1,2``: the second job never writes over the first's."""
    sweep_dir = tmp_path / "sweep"
    done = sweep(sweep_dir, data_dir, "hydra.sweep.subdir=${model_name}", launcher=launcher)
    out = text(done)
    assert done.returncode == 2, out[-3000:]
    if launcher == "basic":
        assert f"gives jobs 0 and 1 the same folder {sweep_dir / 'logreg'}" in out
    else:  # both jobs start at once: whichever comes second stops the sweep (Hydra's record, or the lock)
        assert re.search(rf"gives jobs [01] and [01] the same folder {re.escape(str(sweep_dir / 'logreg'))}"
                         rf"|{re.escape(str(sweep_dir / 'logreg'))} is in use by another run", out), out[-3000:]
    assert not list(sweep_dir.rglob("error.txt"))  # no failure recorded into the other job's folder
    if launcher == "basic":  # the first job ran whole, and its folder is its own (joblib: Hydra's record of the
        # second job, .hydra/resumed_<time>/, is written before any job code runs)
        assert json.loads((sweep_dir / "logreg" / "metrics.json").read_text())["seed"] == 1
        assert not list((sweep_dir / "logreg" / ".hydra").glob("resumed_*"))


@pytest.mark.parametrize("subdir", ["", ".", "../outside_${hydra.job.num}", "<tmp>/elsewhere_${hydra.job.num}"],
                         ids=["empty", "the-sweep-folder", "outside", "absolute"])
def test_a_job_folder_not_of_its_own_in_the_sweep_folder_is_refused_before_anything_is_written(tmp_path, data_dir,
                                                                                              subdir):
    stamped = tmp_path / "multiruns" / "${now:same}"  # a time-stamped folder (the default): not even it is made
    done = sweep(stamped, data_dir, f"hydra.sweep.subdir={subdir.replace('<tmp>', str(tmp_path))}")
    assert done.returncode == 2 and "is not a folder of its own in the sweep folder" in text(done), text(done)[-3000:]
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_a_changed_config_file_is_refused_when_a_sweep_is_run_again(tmp_path, data_dir):
    """The guard composes each job's settings from today's config files: the command alone is not the sweep."""
    experiment = tmp_path / "configs" / "experiment" / "tuned.yaml"
    experiment.parent.mkdir(parents=True)
    experiment.write_text("# @package _global_\nmodel:\n  optimizer:\n    lr: 0.1\n")
    crash = ["+callbacks.crash._target_=tests.faults.CrashOnce", "+callbacks.crash.epoch=2",
             f"+callbacks.crash.marker={tmp_path}/crashed_" + "${seed}"]
    (tmp_path / "crashed_1").write_text("seed 1 never crashes")
    command = [f"hydra.searchpath=[file://{tmp_path / 'configs'}]", "experiment=tuned", *crash]
    sweep_dir = tmp_path / "sweep"
    assert sweep(sweep_dir, data_dir, *command).returncode == 1  # interrupted: seed 2 crashed
    before = snapshot(sweep_dir)
    experiment.write_text(experiment.read_text().replace("0.1", "0.2"))
    again = sweep(sweep_dir, data_dir, *command)  # the same command
    out = text(again)
    assert again.returncode == 2, out[-3000:]
    assert "the config files changed" in out and "model.optimizer.lr: 0.1 -> 0.2" in out
    assert "Launching" not in out and snapshot(sweep_dir) == before  # no job resumed with the new value
    experiment.write_text(experiment.read_text().replace("0.2", "0.1"))  # put back: the sweep finishes
    assert sweep(sweep_dir, data_dir, *command).returncode == 0


@pytest.mark.slow
def test_a_second_sweep_into_a_running_sweeps_folder_is_refused_before_any_job(tmp_path, data_dir):
    marker, sweep_dir = tmp_path / "paused", tmp_path / "sweep"
    first = sweep(sweep_dir, data_dir, *_pause(marker, "fit"), background=True)
    wait_for_marker(marker, first)
    jobs = sorted(p.name for p in sweep_dir.iterdir() if p.is_dir())
    second = sweep(sweep_dir, data_dir, *_pause(marker, "fit"))  # the same command, started while it runs
    out = text(second)
    assert second.returncode == 2, out[-3000:]
    assert "is in use by another run (pid" in out and "one run (or sweep) at a time" in out and "Launching" not in out
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == jobs  # no job of its own
    assert not list(sweep_dir.glob("*/error.txt"))  # nothing written into the running sweep's jobs
    first.send_signal(signal.SIGTERM)
    assert first.communicate(timeout=120)[0] and first.returncode == 143
    assert not list(sweep_dir.glob("*/error.txt"))


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_sweeps_started_in_the_same_second_get_folders_of_their_own(tmp_path, data_dir, launcher):
    """A time-stamped sweep folder (the default one, ``${now:...}``) is new for every sweep: two sweeps that start
    together with the same stamp both finish, each in a folder of its own that its re-run finishes."""
    stamped = tmp_path / "multiruns" / "${now:same}"
    started = [sweep(stamped, data_dir, launcher=launcher, background=True) for _ in range(2)]
    outs = [proc.communicate(timeout=600)[0] for proc in started]
    assert [proc.returncode for proc in started] == [0, 0], "\n".join(out[-3000:] for out in outs)
    folders = sorted(p.parent for p in (tmp_path / "multiruns").glob("*/multirun.yaml"))
    assert [f.name for f in folders] == ["same", "same_2"]
    for folder in folders:
        assert sorted(p.parent.name for p in folder.glob("*/metrics.json")) == ["0_logreg-mnist", "1_logreg-mnist"]
    hinted = {re.search(r"Sweep folder: (\S+)\. If the sweep stops", out)[1] for out in outs}
    assert hinted == {str(f) for f in folders}  # each sweep names its own folder
    before = snapshot(tmp_path / "multiruns")
    again = sweep(folders[1], data_dir, launcher=launcher)  # the command it printed: nothing left to do
    assert again.returncode == 0 and snapshot(tmp_path / "multiruns") == before, text(again)[-3000:]


# Pause every job at the first batch of its second epoch (or of its test), until a signal arrives.
def _pause(marker: Path, stage: str) -> list[str]:
    where = ["+callbacks.pause.stage=train", "+callbacks.pause.epoch=1"] if stage == "fit" else \
        ["+callbacks.pause.stage=test", "+callbacks.pause.batch=1", "data.eval_batch_size=50",
         "trainer.limit_test_batches=2"]
    return ["+callbacks.pause._target_=tests.faults.PauseMidEpoch", f"+callbacks.pause.marker={marker}",
            "+callbacks.pause.seconds=60", *where]


def _descendants(pid: int) -> set[int]:
    psutil = pytest.importorskip("psutil")
    return {p.pid for p in psutil.Process(pid).children(recursive=True)}


@pytest.mark.slow
@pytest.mark.parametrize(("launcher", "sig", "stage"), [
    ("basic", signal.SIGTERM, "fit"),
    ("basic", signal.SIGTERM, "last-test-batch"),  # Lightning finishes the stage: the sweep must still stop
    ("basic", signal.SIGINT, "fit"),
    ("joblib", signal.SIGTERM, "fit"),
    ("joblib", signal.SIGINT, "fit"),
    pytest.param("slurm", signal.SIGTERM, "fit", marks=ON_SLURM),
    pytest.param("slurm", signal.SIGINT, "fit", marks=ON_SLURM),
])
def test_a_stop_signal_stops_the_whole_sweep(tmp_path, data_dir, launcher, sig, stage, request):
    import psutil

    if launcher == "slurm":
        request.getfixturevalue("slurm_cluster")

    marker, sweep_dir = tmp_path / "paused", tmp_path / "sweep"
    proc = sweep(sweep_dir, data_dir, "seed=1,2,3,4", *_pause(marker, stage), launcher=launcher, background=True)
    wait_for_marker(marker, proc)
    time.sleep(1.0)  # every worker has started its job
    workers = _descendants(proc.pid)
    jobs = sorted(p.name for p in sweep_dir.iterdir() if p.is_dir())
    if sig == signal.SIGINT:  # Ctrl-C: the terminal signals the whole process group
        os.killpg(proc.pid, sig)
    else:  # SIGTERM to the sweep process alone (kill, a scheduler)
        proc.send_signal(sig)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 128 + sig, out[-3000:]
    assert f"Finish the sweep with the same command plus hydra.sweep.dir={sweep_dir}" in out
    alive = workers  # loky's resource tracker leaves on its own a moment after its parent: 10 s at most
    deadline = time.monotonic() + 10
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        time.sleep(0.2)
    assert not alive
    after = snapshot(sweep_dir)
    time.sleep(3)
    assert snapshot(sweep_dir) == after  # nothing is written after the sweep exits
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == jobs  # no job started after the signal
    if launcher == "slurm":  # its jobs were cancelled and have left the queue
        arrays = {p.name.split("_")[0] for p in (sweep_dir / ".submitit").iterdir()}
        queue = subprocess.run(["squeue", "-h", "-j", ",".join(arrays)], capture_output=True, text=True)
        assert not queue.stdout.strip() and "Cancelling the sweep's SLURM jobs" in out
    # The signal reached the last test batch: that job's result is complete and kept; no other job finished.
    assert len(list(sweep_dir.glob("*/metrics.json"))) == (stage == "last-test-batch")
