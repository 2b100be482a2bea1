"""Slow: every image model really learns the fake task (far above the 10% of chance)."""

import pytest

from tests.conftest import PAIRS
from zoo.run.runner import train

IMAGE_MODELS = sorted({m for m, d in PAIRS if d == "mnist"})


@pytest.mark.slow
@pytest.mark.parametrize("model", IMAGE_MODELS)
def test_model_learns(make_cfg, model):
    cfg = make_cfg(f"model={model}", "data=mnist", "trainer.max_epochs=4", "data.batch_size=32", "logger=none")
    metrics, _ = train(cfg)
    assert metrics["test/acc"] > 0.6, metrics
    assert metrics["val/acc_best"] > 0.6, metrics
