"""Same seed, same numbers (every model x data pair, CPU, which also saves its checkpoints); different seeds,
different numbers."""

import pytest
import torch

from tests.conftest import PAIRS
from zoo.registry import data_kind
from zoo.run.runner import train

# One short epoch: two training batches (graphs: the one full batch), one validation and one test batch.
SHORT = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
         "trainer.limit_test_batches=1", "logger=none", "trainer.enable_model_summary=false",
         "callbacks.progress_bar.refresh_rate=0", "data.download=false"]
# Small image batches: 2 x 32 training images, 50 for validation and test.
SMALL_BATCHES = ["data.batch_size=32", "data.eval_batch_size=50"]


def _run(make_cfg, tmp_path, name: str, *overrides: str) -> dict[str, float]:
    metrics, _ = train(make_cfg(*SHORT, *overrides, output_dir=tmp_path / name))
    metrics.pop("fit_seconds")
    assert {"train/loss", "val/loss", "test/loss"} <= metrics.keys()
    return metrics


@pytest.mark.parametrize(("model", "data"), PAIRS, ids=[f"{m}-{d}" for m, d in PAIRS])
def test_same_seed_gives_identical_metrics(make_cfg, tmp_path, model, data):
    """``seed=0`` on purpose: a falsy seed must be used, not replaced by a random one."""
    pair = [f"model={model}", f"data={data}", "seed=0", *(SMALL_BATCHES if data_kind(data) == "image" else [])]
    first = _run(make_cfg, tmp_path, "first", *pair)
    assert first["seed"] == 0
    # Every model saves its checkpoints (a model that steps its optimizer behind Lightning's back saved none).
    assert {p.name for p in (tmp_path / "first" / "checkpoints").glob("*.ckpt")} == {"epoch_000.ckpt", "last.ckpt"}
    assert _run(make_cfg, tmp_path, "second", *pair) == first


def test_deterministic_flag_is_honoured(make_cfg, tmp_path):
    torch.use_deterministic_algorithms(False)
    try:
        first = _run(make_cfg, tmp_path, "first", "model=cnn", *SMALL_BATCHES, "trainer.deterministic=true")
        assert torch.are_deterministic_algorithms_enabled()  # Lightning passed it on to PyTorch
        assert _run(make_cfg, tmp_path, "second", "model=cnn", *SMALL_BATCHES, "trainer.deterministic=true") == first
    finally:
        torch.use_deterministic_algorithms(False)


def test_different_seeds_give_different_metrics(make_cfg, tmp_path):
    zero = _run(make_cfg, tmp_path, "zero", "model=mlp", *SMALL_BATCHES, "seed=0")
    one = _run(make_cfg, tmp_path, "one", "model=mlp", *SMALL_BATCHES, "seed=1")
    assert one["train/loss"] != zero["train/loss"] and one["val/loss"] != zero["val/loss"]


def test_a_run_without_seed_records_the_one_it_drew(make_cfg, tmp_path):
    drawn = _run(make_cfg, tmp_path, "drawn", "model=mlp", *SMALL_BATCHES, "seed=null")
    assert _run(make_cfg, tmp_path, "again", "model=mlp", *SMALL_BATCHES, f"seed={int(drawn['seed'])}") == drawn
