"""The benchmark harness runs end to end on tiny data (wiring only: no timing is asserted)."""

import json
from pathlib import Path

import pytest
import torch

from benchmarks import ablation, graph, image, process, run
from benchmarks.harness import Context


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
