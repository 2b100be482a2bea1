"""Speed settings: the ``threads`` key and parallel sweep jobs (hydra/launcher=joblib)."""

import json

import pytest
import torch
from hydra.utils import instantiate

from tests.runs import TINY, output, run_train
from zoo.errors import ConfigError
from zoo.run.runner import train


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_threads_are_set_before_the_run_and_recorded(make_cfg, tmp_path, restore_threads):
    torch.set_num_threads(1)
    cfg = make_cfg("model=logreg", "data=mnist", "threads=2", "trainer.fast_dev_run=true")
    metrics, _ = train(cfg)
    assert metrics["threads"] == 2  # the count the run used
    assert json.loads((tmp_path / "metrics.json").read_text())["threads"] == 2
    assert torch.get_num_threads() == 1  # the process is left as the run found it


def test_threads_null_keeps_pytorchs_choice(make_cfg, restore_threads):
    torch.set_num_threads(2)
    metrics, _ = train(make_cfg("model=logreg", "data=mnist", "threads=null", "trainer.fast_dev_run=true"))
    assert metrics["threads"] == 2 == torch.get_num_threads()


def test_default_is_one_thread(make_cfg):
    assert make_cfg().threads == 1


@pytest.mark.parametrize("value", ["0", "-2", "1.5", "many"])
def test_bad_thread_count_is_refused_with_its_key(make_cfg, value, restore_threads):
    with pytest.raises(ConfigError, match=r"threads=\S+: must be (an integer )?>= 1 \(CPU threads per process\)"):
        train(make_cfg("model=logreg", "data=mnist", f"threads={value}"))


def test_joblib_launcher_composes(make_cfg):
    launcher = make_cfg("hydra/launcher=joblib", "hydra.launcher.n_jobs=3").hydra.launcher
    assert launcher.n_jobs == 3 and launcher.prefer == "processes"
    assert type(instantiate(launcher)).__name__ == "JoblibLauncher"  # the plugin accepts every setting


@pytest.mark.slow
def test_joblib_sweep_runs_jobs_in_parallel_processes_and_survives_a_failed_job(tmp_path, data_dir):
    data = tmp_path / "data"
    data.mkdir()
    (data / "MNIST").symlink_to(data_dir / "MNIST", target_is_directory=True)  # no FashionMNIST: those jobs fail
    log_dir = tmp_path / "logs"
    proc = run_train("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "model=logreg",
                     "seed=1,2", "data=mnist,fashion_mnist", *TINY, data_dir=data, log_dir=log_dir)
    text = output(proc)
    assert proc.returncode == 1, text[-3000:]  # the sweep ran every job, then exits non-zero for the failed ones
    assert "Joblib.Parallel(" in text
    assert "ConfigStore schema" not in text  # configs/hydra/launcher/joblib.yaml is Zoo's own, on purpose
    (sweep,) = (log_dir / "multiruns").iterdir()
    done = sorted(p.parent.name for p in sweep.glob("*/metrics.json"))
    failed = sorted(p.parent.name for p in sweep.glob("*/error.txt"))
    assert done == ["0_logreg-mnist", "2_logreg-mnist"], text[-3000:]
    assert failed == ["1_logreg-fashion_mnist", "3_logreg-fashion_mnist"]
    assert "Sweep finished with 2 FAILED job(s)" in text
    assert json.loads((sweep / "0_logreg-mnist" / "metrics.json").read_text())["threads"] == 1


def test_loss_accuracy_matches_torchmetrics_over_uneven_batches():
    from torchmetrics import MeanMetric
    from torchmetrics.classification import MulticlassAccuracy

    from zoo.tasks.epoch_metrics import LossAccuracy

    torch.manual_seed(0)
    ours, mean, acc = LossAccuracy(), MeanMetric(), MulticlassAccuracy(5, average="micro")
    for batch in (7, 64, 3):
        logits, y = torch.randn(batch, 5), torch.randint(0, 5, (batch,))
        losses = torch.nn.functional.cross_entropy(logits, y, reduction="none")
        ours.update(losses, logits, y)
        mean.update(losses)
        acc.update(logits, y)
    loss, accuracy = ours.compute()
    assert loss.item() == pytest.approx(mean.compute().item(), rel=1e-6)
    assert accuracy.item() == pytest.approx(acc.compute().item(), abs=1e-7)
    ours.reset()
    assert ours.update_count == 0 and ours.total.item() == 0
