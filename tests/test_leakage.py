"""No model sees a validation or test label in its input: permuting the held-out labels changes no prediction.

Covered: every model config that runs on ``data=nyc_zip`` (new ones join by themselves) with every label-derived
data option on (the flow-share features); every ``experiment=`` config on graph data, as configured; and every
split (``data/split``: random, kfold, per_class, Cora's public split, and the label-scarcity keys) with the models
and features that read labels. The split is made from the true labels and then held fixed (it is stratified by
label, so it would move with the labels); only what the labels then feed can change. Every non-training label
(validation, test and the unlabelled nodes of a label-scarce split) is moved to another class before any feature
is computed from the training labels. Training runs a few epochs and the final weights predict (no checkpoint is
chosen by validation accuracy, which legitimately reads validation labels).
"""

from pathlib import Path

import pytest
import torch
import yaml
from omegaconf import DictConfig, open_dict

import datamodules.graph
import datamodules.nyc_zip
from datamodules.graph import GraphDataModule
from tests.conftest import PAIRS
from zoo.registry import CONFIG_DIR, data_kind, names
from zoo.run.runner import train

NYC_MODELS = sorted(m for m, d in PAIRS if d == "nyc_zip")
QUIET = ["data.download=false", "seed=0", "test=false", "logger=none", "trainer.enable_model_summary=false",
         "callbacks.progress_bar.refresh_rate=0"]
RUN = ["data=nyc_zip", "data.flow_shares=true", "trainer.max_epochs=3", *QUIET]


def _experiment_data(name: str) -> str | None:
    defaults = yaml.safe_load((CONFIG_DIR / "experiment" / f"{name}.yaml").read_text()).get("defaults", [])
    return next((d["override /data"] for d in defaults if isinstance(d, dict) and "override /data" in d), None)


GRAPH_EXPERIMENTS = [e for e in names("experiment") if (d := _experiment_data(e)) and data_kind(d) == "graph"]
# Splits (data overrides) x models that read labels: label propagation / flow votes / the delineation model read
# ``y_train``; on NYC every model also reads the flow shares computed from the training labels.
SPLITS = {
    "nyc_zip": [["data/split=kfold", "data.split.fold=4", "data.split.repeat=1"],
                ["data/split=kfold", "data.split.fold=1", "data.split.label_rate=0.2"],
                ["data/split=per_class", "data.split.train_per_class=3", "data.split.val_per_class=2"]],
    "cora": [["data/split=per_class"], ["data/split=per_class", "data.split.labels_per_class=5"],
             ["data/split=kfold", "data.split.fold=2"]],
}
SPLIT_MODELS = {"nyc_zip": ["flow_vote", "label_propagation", "delineation_gcn", "mlp"],
                "cora": ["label_propagation", "delineation_gcn"]}
SPLIT_CASES = [(data, model, split) for data, splits in SPLITS.items() for split in splits
               for model in SPLIT_MODELS[data]]


def _shorten(cfg: DictConfig) -> DictConfig:
    """A few epochs (or steps, for the models trained in rounds) instead of an experiment's full training."""
    with open_dict(cfg):
        if cfg.trainer.max_epochs != -1:
            cfg.trainer.max_epochs = min(cfg.trainer.max_epochs, 3)
        for key, most in (("steps_per_epoch", 5), ("max_rounds", 2)):
            if key in cfg.model:
                cfg.model[key] = min(cfg.model[key], most)
    return cfg


def _predictions(make_cfg, output_dir: Path, *overrides: str) -> torch.Tensor:
    """Class probabilities ``[N, C]`` of every node after a short training run."""
    _, objects = train(_shorten(make_cfg(*overrides, output_dir=output_dir)))
    task, data = objects["model"], objects["datamodule"].data
    task.eval()
    with torch.no_grad():
        logits, _ = task.forward_batch(data, "predict")
    return logits.softmax(dim=-1)


def _shift_held_out_labels(monkeypatch) -> None:
    """From now on every graph DataModule splits by the true labels, then moves every label outside the training
    mask to another class (a permutation of the classes) before anything reads the labels."""
    split_masks = GraphDataModule.split_masks

    def split_then_shift(self, data):
        masks = split_masks(self, data)
        held_out = ~masks[0]
        data.y = torch.where(held_out, (data.y + 1) % (int(data.y.max()) + 1), data.y)
        return masks

    monkeypatch.setattr(GraphDataModule, "split_masks", split_then_shift)


def _assert_no_leak(make_cfg, tmp_path, monkeypatch, *overrides: str) -> None:
    clean = _predictions(make_cfg, tmp_path / "clean", *overrides)
    _shift_held_out_labels(monkeypatch)
    permuted = _predictions(make_cfg, tmp_path / "permuted", *overrides)
    torch.testing.assert_close(permuted, clean, rtol=0, atol=1e-6)


@pytest.mark.parametrize("model", NYC_MODELS)
def test_held_out_labels_do_not_change_predictions(make_cfg, tmp_path, monkeypatch, model):
    _assert_no_leak(make_cfg, tmp_path, monkeypatch, f"model={model}", *RUN)


@pytest.mark.parametrize("experiment", GRAPH_EXPERIMENTS)
def test_experiments_do_not_read_held_out_labels(make_cfg, tmp_path, monkeypatch, experiment):
    _assert_no_leak(make_cfg, tmp_path, monkeypatch, f"experiment={experiment}", *QUIET)


@pytest.mark.parametrize(("data", "model", "split"), SPLIT_CASES,
                         ids=[f"{d}-{m}-{' '.join(s)}" for d, m, s in SPLIT_CASES])
def test_every_split_keeps_held_out_labels_out(make_cfg, tmp_path, monkeypatch, data, model, split):
    features = ["data.flow_shares=true"] if data == "nyc_zip" else []
    _assert_no_leak(make_cfg, tmp_path, monkeypatch, f"model={model}", f"data={data}", *features, *split,
                    "trainer.max_epochs=3", *QUIET)


def test_graph_experiments_are_covered():
    assert {_experiment_data(e) for e in GRAPH_EXPERIMENTS} == {"nyc_zip", "cora"}
    assert "delineation_nyc_zip" in GRAPH_EXPERIMENTS and "gcn_cora" in GRAPH_EXPERIMENTS


LEAKY = {"nyc_zip-random": ["model=flow_vote", *RUN],
         "nyc_zip-kfold-scarce": ["model=flow_vote", *RUN, "data/split=kfold", "data.split.label_rate=0.2"],
         "cora-per_class": ["model=label_propagation", "data=cora", "data/split=per_class", "trainer.max_epochs=3",
                            *QUIET]}


@pytest.mark.parametrize("overrides", LEAKY.values(), ids=LEAKY.keys())
def test_the_check_catches_a_model_that_reads_held_out_labels(make_cfg, tmp_path, monkeypatch, overrides):
    """The check can fail: with every label passed as ``y_train`` (a leak), the predictions follow the shift."""
    monkeypatch.setattr(datamodules.graph, "train_labels", lambda data: data.y)
    monkeypatch.setattr(datamodules.nyc_zip, "train_labels", lambda data: data.y)
    clean = _predictions(make_cfg, tmp_path / "clean", *overrides)
    _shift_held_out_labels(monkeypatch)
    permuted = _predictions(make_cfg, tmp_path / "permuted", *overrides)
    assert not torch.allclose(permuted, clean, atol=1e-6)
