"""The benchmark harness runs end to end on tiny data (wiring only: no timing is asserted)."""

import json
from pathlib import Path

import pytest
import torch

from benchmarks import ablation, graph, image, process, run
from benchmarks.harness import Context
from tests.slurm import slurm_cluster as _slurm_cluster  # noqa: F401 (registers the fixture)


@pytest.fixture
def ctx(tmp_path: Path, data_dir: Path) -> Context:
    return Context(device=torch.device("cpu"), data_dir=data_dir, work_dir=tmp_path, repeats=1, warmup=0)


def test_image_comparisons_run_on_fake_mnist(ctx: Context) -> None:
    rows = image.image_pipeline(ctx, batch_size=32, max_batches=3, val_size=100)
    rows += image.training_overhead(ctx, models=("mlp",), limit_batches=2, val_size=100, batch_size=32)
    rows += image.mnist_speed_run(ctx, limit_batches=2, val_size=100)
    assert [r.status for r in rows] == ["ok"] * 3
    assert all(r.ours and r.ours > 0 for r in rows)
    assert all(r.baseline and r.baseline > 0 and r.ratio for r in rows[:2])
    assert rows[2].met is None  # limited batches: the accuracy goal is not judged


def test_missing_data_is_skipped_with_a_reason(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    ctx = Context(device=torch.device("cpu"), data_dir=empty, work_dir=tmp_path, repeats=1, warmup=0)
    for row in [*image.image_pipeline(ctx), *graph.cora_gcn(ctx, epochs=1)]:
        assert row.status.startswith("skipped: no "), row.status
        assert str(empty) in row.status


def test_sparse_layer_matches_the_dense_seed_formula() -> None:
    assert graph.check_same_operator(n=60) < 1e-5


def test_delineation_reports_dense_out_of_memory_instead_of_crashing(ctx: Context) -> None:
    # 60 nodes fit the limit (3 x 60^2 x 4 bytes), 400 nodes do not.
    rows = graph.delineation_gcn(ctx, sizes=(60, 400), epochs=1, dense_limit_gib=3 * 100**2 * 4 / 2**30)
    assert rows[0].baseline is not None and rows[0].ratio is not None
    assert rows[1].baseline is None and "out of memory" in rows[1].notes
    assert rows[1].ours > 0 and rows[1].extra["edges"] > rows[0].extra["edges"]
    assert all(r.extra["sparse_recompute_s"] > 0 for r in rows)  # the epoch that redoes Â H, reported too


def test_run_writes_json_and_markdown(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "results"
    rows = run.main(["--quick", "--data-dir", str(empty), "--only", "1,4", "--out", str(out), "--threads", "0"])
    assert len(rows) == 2
    saved = json.loads((out / "cpu-quick.json").read_text())
    assert saved["environment"]["torch"] == torch.__version__
    assert [r["status"][:8] for r in saved["rows"]] == ["skipped:"] * 2
    assert "| 4 Cora GCN |" in (out / "cpu-quick.md").read_text()


def test_ablation_variants_and_profile_run_on_fake_mnist(data_dir: Path) -> None:
    table = ablation.main(["variants", "--data-dir", str(data_dir), "--limit-batches", "2", "--repeats", "1", "--val-size", "100"])
    rows = [line.split(" | ")[0].lstrip("| ") for line in table.splitlines()[2:]]
    assert rows == [*ablation.VARIANTS, "raw PyTorch loop"]
    assert table.splitlines()[-1].endswith("| 1.00x |")  # the raw loop is the reference
    profile = ablation.main(["cprofile", "--data-dir", str(data_dir), "--limit-batches", "2", "--top", "5", "--val-size", "100"])
    assert profile.startswith("one epoch: ") and "zoo/run/runner.py" in profile


def test_only_updates_the_results_file_in_place(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "results"
    run.main(["--quick", "--data-dir", str(empty), "--only", "1,4", "--out", str(out), "--threads", "0"])
    run.main(["--quick", "--data-dir", str(empty), "--only", "4", "--out", str(out), "--threads", "0"])
    saved = json.loads((out / "cpu-quick.json").read_text())
    assert [r["comparison"].split()[0] for r in saved["rows"]] == ["1", "4"]  # 1 kept, 4 measured again
    assert saved["environment"]["kept_rows"].startswith("1: ")
    assert all("measured" in r["extra"] for r in saved["rows"])


@pytest.mark.slow
def test_fixed_cost_and_sweep_comparisons_run_commands(ctx: Context) -> None:
    (fixed,) = process.fixed_cost(ctx, overrides=("data.val_size=100",))
    assert fixed.status == "ok", fixed.status
    assert fixed.ours > 0 and fixed.baseline > 0 and fixed.met is not None
    assert fixed.extra["unneeded_packages"] == [], fixed.notes  # an image run imports no PyG, pandas, W&B ...
    (sweep,) = process.sweep_throughput(ctx, limit_batches=2, repeats=1, overrides=("data.val_size=100",))
    assert sweep.status == "ok", sweep.status
    assert sweep.extra["jobs"] == 4 and sweep.ours > 0 and sweep.baseline > 0


def test_ablation_metric_updates_lists_before_now_and_raw() -> None:
    rows = ablation.metric_updates(n=10)
    assert [name for name, _, _ in rows][-1] == "three raw in-place sums" and rows[-1][2] == 1.0
    assert len(rows) == 3 and all(us > 0 for _, us, _ in rows)


def test_sweep_launchers_write_their_own_results_file(tmp_path: Path) -> None:
    empty, out = tmp_path / "empty", tmp_path / "results"
    empty.mkdir()
    run.main(["--data-dir", str(empty), "--only", "9", "--out", str(out), "--name", "cpu_sweeps", "--threads", "0",
              "--note", "shared machine"])
    saved = json.loads((out / "cpu_sweeps.json").read_text())
    (row,) = saved["rows"]
    assert saved["environment"]["note"] == "shared machine"
    assert row["comparison"] == "9 sweep launchers" and row["status"] == f"skipped: no MNIST in {empty}"
    assert (out / "cpu_sweeps.md").is_file() and not (out / "cpu.json").exists()


@pytest.mark.slow
@pytest.mark.slurm
@pytest.mark.xdist_group("slurm")  # one test at a time on the cluster
def test_sweep_launchers_time_a_sweep_on_the_local_cluster(ctx: Context, slurm_cluster) -> None:
    rows = process.sweep_launchers(ctx, grid=("model=logreg", "seed=1,2"), limit_batches=2, launchers=("slurm",),
                                   overrides=("data.val_size=100",))
    assert rows[0].status == "ok" and rows[0].ours > 0 and rows[0].baseline is None  # no basic side: no ratio
    if not slurm_cluster.accounting:
        assert rows[1].status.startswith("skipped: no per-job times"), rows[1].status
        return
    queue, handback = rows[1:]
    assert queue.status == handback.status == "ok", (queue.status, handback.status)
    assert queue.extra["jobs"] == [f"{queue.extra['jobs'][0].split('_')[0]}_{i}" for i in (0, 1)]
    assert queue.extra["result_lines"] == 2 and 0 <= queue.ours <= queue.extra["wall_s"]
    assert -1 < handback.ours < 30 and queue.extra["startup_s"] > 0  # sacct's 1-s resolution: a result may look early


def fake_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **scripts: str) -> None:
    """Put ``name`` commands running the given shell lines first on PATH (SLURM clients without a cluster)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, script in scripts.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{script}\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")


def test_slurm_times_come_from_scontrol_without_accounting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    job = ("JobId={id} ArrayJobId=163 ArrayTaskId={task} JobName=train JobState=COMPLETED Reason=None "
           "SubmitTime=2026-12-04T19:32:53 EligibleTime=2026-12-04T19:32:54 StartTime=2026-12-04T19:32:5{start} "
           "EndTime=2026-12-04T19:33:05 Deadline=N/A")
    fake_commands(tmp_path, monkeypatch, sacct="echo 'Slurm accounting storage is disabled' >&2; exit 1",
                  scontrol=f"echo '{job.format(id=165, task=1, start=7)}'; echo '{job.format(id=164, task=0, start=4)}'")
    records, source = process.slurm_records({"163"}, {"163_0", "163_1"})
    assert source == "scontrol"
    times = process.slurm_overheads(records, records, start=0.0, end=process._local_epoch("2026-12-04 19:33:06"))
    assert times["jobs"] == ["163_0", "163_1"] and times["queue_s"] == [1.0, 4.0]  # task order, as sacct gives it
    assert times["handback_s"] == [1.0, 1.0]  # no COMPLETED lines: the command's end


def test_sweep_launchers_skip_slurm_where_sinfo_does_not_answer(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process.shutil, "which", lambda name: None)
    (row,) = process.sweep_launchers(ctx, launchers=("slurm",))  # only the SLURM side: without sinfo, nothing runs
    assert row.status == "skipped: no SLURM here (sinfo is not on PATH)", row.status
    monkeypatch.undo()  # an sinfo whose controller is down, as on a login node of a stopped cluster
    fake_commands(tmp_path, monkeypatch, sinfo="echo 'slurm_load_partitions: Unable to contact slurm controller' >&2; "
                                               "exit 1")
    (row,) = process.sweep_launchers(ctx, launchers=("slurm",))
    assert row.status.startswith("skipped: sinfo does not answer (exit 1: slurm_load_partitions: Unable"), row.status
    assert row.case.startswith("slurm")


def test_slurm_overheads_from_the_launcher_log_and_sacct() -> None:
    log = ("[2026-12-04 19:32:53,221][HYDRA] SLURM job 163_0: sweep job #0 (model=logreg seed=1) -> /x/0_logreg\n"
           "[2026-12-04 19:32:55,270][HYDRA] SLURM job 163_0 0_logreg-mnist: RUNNING on n1\n"
           "[2026-12-04 19:33:05,500][HYDRA] SLURM job 163_1 1_logreg-mnist: COMPLETED\n"
           "[2026-12-04 19:33:07,250][HYDRA] SLURM job 163_0 0_logreg-mnist: COMPLETED\n")
    acct = ("163_0|2026-12-04T19:32:53|2026-12-04T19:32:54|2026-12-04T19:33:05|COMPLETED\n"
            "163_1|2026-12-04T19:32:53|2026-12-04T19:32:57|2026-12-04T19:33:05|COMPLETED\n")
    start = process._local_epoch("2026-12-04 19:32:45")
    times = process.slurm_overheads(log, acct, start=start, end=start + 23.0)
    assert times["jobs"] == ["163_0", "163_1"] and times["result_lines"] == 2
    assert times["queue_s"] == [1.0, 4.0] and times["run_s"] == [11.0, 8.0]
    assert times["handback_s"] == pytest.approx([2.25, 0.5])
    assert times["startup_s"] == 8.0 and times["tail_s"] == pytest.approx(0.75) and times["wall_s"] == 23.0
    assert times["most_at_once"] == 2
    with pytest.raises(RuntimeError, match="163_1 ended FAILED"):
        process.slurm_overheads(log, acct.replace("57|2026-12-04T19:33:05|COMPLETED", "57||FAILED"), start, start)
