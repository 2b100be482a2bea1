"""Multi-process (DDP) runs: one run directory, rank-zero outputs only, same result as one process."""

import json
import logging
import os
import warnings

import pytest
import torch.distributed as dist

from tests.runs import TINY, output, run_train
from zoo.run.distributed import keep_full_batch_on_one_device
from zoo.run.runner import train

# Four SGD steps of logistic regression: far from converged, so the test accuracy tells runs apart.
# data.batch_size is per process: 2 processes x 16 = one process x 32 (the same samples in each step).
COMMON = ["model=logreg", "data=mnist", "model.optimizer.lr=0.01", "trainer.limit_train_batches=4"]


@pytest.mark.slow
def test_ddp_cpu_two_processes_match_one(tmp_path, data_dir, make_cfg):
    # As sweep jobs (-m), the hard case: Lightning's own child command would re-launch the whole sweep; and the
    # second job runs in the process the first one's launcher wrote MASTER_PORT, LOCAL_RANK... into.
    log_dir = tmp_path / "logs"
    proc = run_train("-m", *TINY, *COMMON, "trainer=ddp_cpu", "data.batch_size=16", "seed=12345,7",
                     data_dir=data_dir, log_dir=log_dir, timeout=240)
    text = output(proc)
    assert proc.returncode == 0, text[-3000:]
    assert text.count("MEMBER: 2/2") == 2  # both ranks of each job joined its process group
    assert "FAILED" not in text

    # One run directory, whatever the number of processes: the sweep's job dir, and nothing else.
    assert sorted(p.name for p in log_dir.iterdir()) == ["multiruns"]
    (sweep,) = (log_dir / "multiruns").iterdir()
    assert sorted(p.name for p in sweep.iterdir()) == ["0_logreg-mnist", "1_logreg-mnist", "multirun.yaml"]
    run = sweep / "0_logreg-mnist"
    assert not list(tmp_path.glob("**/train_ddp_process_*"))  # child ranks write no log files
    assert sorted(p.name for p in (run / ".hydra").iterdir()) == [
        "config.yaml", "config_resolved.yaml", "hydra.yaml", "overrides.yaml"]
    assert (run / "checkpoints" / "last.ckpt").is_file()
    ddp = json.loads((run / "metrics.json").read_text())

    one, _ = train(make_cfg(*TINY, *COMMON, "data.batch_size=32", output_dir=tmp_path / "one"))
    assert 0.1 < one["test/acc"] < 0.99  # not saturated: a different run would score differently
    assert ddp["test/acc"] == pytest.approx(one["test/acc"], abs=0.011)  # 200 test images: at most 2 differ
    assert ddp["test/loss"] == pytest.approx(one["test/loss"], rel=1e-4)  # the same gradient steps, to float precision


def test_full_batch_graph_runs_on_one_device(make_cfg, caplog):
    cfg = make_cfg("trainer=ddp_cpu", "model=gcn", "data=cora")
    with caplog.at_level(logging.WARNING):
        keep_full_batch_on_one_device(cfg)
    assert (cfg.trainer.devices, cfg.trainer.num_nodes, cfg.trainer.strategy) == (1, 1, "auto")
    assert "cannot be split across devices" in caplog.text


def test_image_data_keeps_its_devices(make_cfg):
    cfg = make_cfg("trainer=ddp_cpu", "trainer.devices=3")
    keep_full_batch_on_one_device(cfg)
    assert (cfg.trainer.devices, cfg.trainer.strategy) == (3, "ddp")


def test_a_ddp_run_leaves_the_process_as_it_found_it(tmp_path, data_dir, make_cfg):
    """No process group and none of the variables Lightning's launcher writes outlive the run: PyTorch asks every
    process to destroy its group, and the next run in the process (a sweep's next job) would take them for its own."""
    before, filters = dict(os.environ), list(warnings.filters)
    metrics, _ = train(make_cfg(*TINY, *COMMON, "trainer=ddp_cpu", "trainer.devices=1", output_dir=tmp_path / "r"))
    assert "test/acc" in metrics and not dist.is_initialized()
    assert dict(os.environ) == before
    assert warnings.filters == filters  # extras.quiet's filters, and a resume's, end with the run
    assert metrics["threads"] == 1  # threads=1 held under DDP too (Lightning's CPU DDP gives each rank its share of the cores)
