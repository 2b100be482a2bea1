"""Training curves (zoo/callbacks/curves.py) and figures sent to the loggers (zoo/callbacks/figures.py)."""

from types import SimpleNamespace

import pandas as pd
import pytest
from lightning.pytorch.loggers import TensorBoardLogger

from tests.runs import TINY
from zoo.callbacks.curves import TrainingCurves
from zoo.callbacks.figures import publish_figure, pyplot
from zoo.run.runner import train


def test_curves_hold_every_epoch_of_train_and_val(make_cfg, tmp_path):
    cfg = make_cfg("model=logreg", "data=mnist", *TINY, "trainer.max_epochs=3", "test=false")
    _, objects = train(cfg)
    assert (tmp_path / "training_curves.png").stat().st_size > 0
    (curves,) = [c for c in objects["callbacks"] if isinstance(c, TrainingCurves)]
    logged = pd.read_csv(tmp_path / "csv" / "metrics.csv")  # what the task logged, per epoch
    for key, points in curves.history.items():
        expected = logged.dropna(subset=[key]).set_index("epoch")[key]
        assert list(points) == [0, 1, 2] == list(expected.index), key
        assert list(points.values()) == pytest.approx(list(expected), rel=1e-6), key


def test_figures_go_to_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = TensorBoardLogger(tmp_path, name=None, version="")
    fig, _ = pyplot().subplots()
    path = publish_figure(SimpleNamespace(loggers=[logger], global_step=7), fig, tmp_path / "f.png", "some/figure")
    logger.experiment.flush()
    assert path.stat().st_size > 0
    events = EventAccumulator(str(tmp_path)).Reload()
    assert events.Tags()["images"] == ["some/figure"] and events.Images("some/figure")[0].step == 7
