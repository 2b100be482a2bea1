"""End-to-end runs of ``train(cfg)`` for every model x data pair in the config folder."""

import json

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import PAIRS
from zoo.run.runner import train


@pytest.mark.parametrize(("model", "data"), PAIRS, ids=[f"{m}-{d}" for m, d in PAIRS])
def test_fast_dev_run(make_cfg, tmp_path, model, data):
    cfg = make_cfg(f"model={model}", f"data={data}", "trainer.fast_dev_run=true")
    metrics, objects = train(cfg)
    assert set(metrics) >= {"test/acc", "test/loss", "params", "fit_seconds"}
    assert 0.0 <= metrics["test/acc"] <= 1.0
    assert metrics["params"] == sum(p.numel() for p in objects["model"].parameters())
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["test/acc"] == pytest.approx(metrics["test/acc"])


def test_full_run_tests_best_checkpoint(make_cfg, tmp_path):
    cfg = make_cfg("model=logreg", "data=mnist", "trainer.max_epochs=2")
    metrics, objects = train(cfg)
    ckpts = sorted((tmp_path / "checkpoints").glob("*.ckpt"))
    assert {p.name for p in ckpts} >= {"last.ckpt"}
    best = objects["callbacks"][0].best_model_path
    assert best and best.endswith(".ckpt")
    assert metrics["epochs"] == 2
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert {k: written[k] for k in ("params", "epochs", "seed")} == {"params": metrics["params"], "epochs": 2,
                                                                     "seed": 12345}
    assert all(type(written[k]) is int for k in ("params", "epochs", "seed"))  # 2, not 2.0
    assert (tmp_path / "csv" / "metrics.csv").is_file()


def test_epoch_metrics_are_sample_weighted_over_uneven_batches(make_cfg):
    # 200 test images in batches of 64: 64, 64, 64 and 8. A mean of per-batch means would weigh the last 8 like 64.
    cfg = make_cfg("model=mlp", "data=mnist", "trainer.max_epochs=1", "trainer.limit_train_batches=3",
                   "data.eval_batch_size=64", "trainer.enable_model_summary=false")
    metrics, objects = train(cfg)
    model, dm = objects["model"].eval(), objects["datamodule"]
    losses, hits = [], []
    with torch.no_grad():
        for x, y in dm.test_dataloader():
            logits = model(x)
            losses.append(F.cross_entropy(logits, y, reduction="none"))
            hits.append(logits.argmax(1) == y)
    assert [len(h) for h in hits] == [64, 64, 64, 8]
    assert metrics["test/loss"] == pytest.approx(torch.cat(losses).mean().item(), rel=1e-5)
    assert metrics["test/acc"] == pytest.approx(torch.cat(hits).float().mean().item(), abs=1e-6)
    batch_means = torch.stack([loss.mean() for loss in losses]).mean().item()
    assert batch_means != pytest.approx(metrics["test/loss"], rel=1e-5)  # the fake data tells the two apart


def test_label_smoothing_smooths_the_training_loss_only():
    from zoo.tasks.classifier import Classifier

    torch.manual_seed(0)
    net = torch.nn.Linear(4, 3)
    model = Classifier(net, optimizer=torch.optim.SGD, num_classes=3, label_smoothing=0.2)
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    logits = net(x)
    train_loss, val_loss = model.step((x, y), "train"), model.step((x, y), "val")
    assert train_loss.item() == pytest.approx(F.cross_entropy(logits, y, label_smoothing=0.2).item(), rel=1e-6)
    assert val_loss.item() == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)
    assert train_loss.item() != pytest.approx(val_loss.item(), rel=1e-3)
