"""Multi-process (DDP) runs: one run directory, rank-zero outputs only, same result as one process."""

import json
import logging

import pytest

from tests.runs import TINY, output, run_train
from zoo.run.distributed import keep_full_batch_on_one_device
from zoo.run.runner import train

# Four SGD steps of logistic regression: far from converged, so the test accuracy tells runs apart.
# data.batch_size is per process: 2 processes x 16 = one process x 32 (the same samples in each step).
COMMON = ["model=logreg", "data=mnist", "model.optimizer.lr=0.01", "trainer.limit_train_batches=4"]


@pytest.mark.slow
def test_ddp_cpu_two_processes_match_one(tmp_path, data_dir, make_cfg):
    # As a sweep job (-m), the hard case: Lightning's own child command would re-launch the whole sweep.
    log_dir = tmp_path / "logs"
    proc = run_train("-m", *TINY, *COMMON, "trainer=ddp_cpu", "data.batch_size=16", data_dir=data_dir,
                     log_dir=log_dir)
    text = output(proc)
    assert proc.returncode == 0, text[-3000:]
    assert "MEMBER: 2/2" in text  # both ranks joined the process group
    assert "FAILED" not in text

    # One run directory, whatever the number of processes: the sweep's job dir, and nothing else.
    assert sorted(p.name for p in log_dir.iterdir()) == ["multiruns"]
    (sweep,) = (log_dir / "multiruns").iterdir()
    assert sorted(p.name for p in sweep.iterdir()) == ["0_logreg-mnist", "multirun.yaml"]
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


def test_a_run_destroys_its_process_group(tmp_path, data_dir, make_cfg):
    """PyTorch asks every process to destroy its process group; left to the exit, gloo can abort a finished rank."""
    import torch.distributed as dist

    metrics, _ = train(make_cfg(*TINY, *COMMON, "trainer=ddp_cpu", "trainer.devices=1", output_dir=tmp_path / "r"))
    assert "test/acc" in metrics and not dist.is_initialized()
