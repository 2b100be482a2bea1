"""No model sees a validation or test label in its input: permuting the held-out labels changes no prediction.

Every model config that runs on ``data=nyc_zip`` is covered (new ones join by themselves), with every label-derived
data option on (the flow-share features). The split is held fixed (it is stratified by label, so it would move
with the labels); only what the labels then feed can change. Training runs a few epochs and the final weights
predict (no checkpoint is chosen by validation accuracy, which legitimately reads validation labels).
"""

from pathlib import Path

import pytest
import torch

import datamodules.graph
import datamodules.nyc_zip
from datamodules.nyc_zip import stratified_masks
from datamodules.nyc_zip_dataset import BOROUGHS, NYCZipDataset
from tests.conftest import PAIRS
from zoo.run.runner import train

NYC_MODELS = sorted(m for m, d in PAIRS if d == "nyc_zip")
RUN = ["data=nyc_zip", "data.download=false", "data.flow_shares=true", "seed=0", "trainer.max_epochs=3", "test=false",
       "logger=none", "trainer.enable_model_summary=false", "callbacks.progress_bar.refresh_rate=0"]


def _predictions(make_cfg, output_dir: Path, model: str) -> torch.Tensor:
    """Class probabilities ``[N, C]`` of every node after a short training run."""
    _, objects = train(make_cfg(f"model={model}", *RUN, output_dir=output_dir))
    task, data = objects["model"], objects["datamodule"].data
    task.eval()
    with torch.no_grad():
        logits, _ = task.forward_batch(data, "predict")
    return logits.softmax(dim=-1)


@pytest.fixture
def fixed_split(monkeypatch, data_dir):
    """The real (fake-file) graph and its seed-0 split, kept whatever labels the graph is given later."""
    graph = NYCZipDataset(data_dir / "nyc_zip", download=False)[0]
    masks = stratified_masks(graph.y, 0.6, 0.2, 0)
    monkeypatch.setattr(datamodules.nyc_zip, "stratified_masks", lambda *args, **kwargs: masks)
    return graph, masks[0]


def _serve_graph_with_held_out_labels_shifted(monkeypatch, graph, train_mask) -> None:
    """The DataModule reads a copy of ``graph`` whose every validation/test label is another borough."""
    permuted = graph.clone()
    held_out = ~train_mask
    permuted.y[held_out] = (permuted.y[held_out] + 1) % len(BOROUGHS)  # a permutation of the classes
    monkeypatch.setattr(datamodules.nyc_zip, "NYCZipDataset", lambda *args, **kwargs: [permuted.clone()])


@pytest.mark.parametrize("model", NYC_MODELS)
def test_held_out_labels_do_not_change_predictions(make_cfg, tmp_path, monkeypatch, fixed_split, model):
    graph, train_mask = fixed_split
    clean = _predictions(make_cfg, tmp_path / "clean", model)
    _serve_graph_with_held_out_labels_shifted(monkeypatch, graph, train_mask)
    permuted = _predictions(make_cfg, tmp_path / "permuted", model)
    torch.testing.assert_close(permuted, clean, rtol=0, atol=1e-6)


def test_the_check_catches_a_model_that_reads_held_out_labels(make_cfg, tmp_path, monkeypatch, fixed_split):
    """The check can fail: with every label passed as ``y_train`` (a leak), the predictions follow the shift."""
    graph, train_mask = fixed_split
    monkeypatch.setattr(datamodules.graph, "train_labels", lambda data: data.y)
    monkeypatch.setattr(datamodules.nyc_zip, "train_labels", lambda data: data.y)
    clean = _predictions(make_cfg, tmp_path / "clean", "flow_vote")
    _serve_graph_with_held_out_labels_shifted(monkeypatch, graph, train_mask)
    permuted = _predictions(make_cfg, tmp_path / "permuted", "flow_vote")
    assert not torch.allclose(permuted, clean, atol=1e-6)
