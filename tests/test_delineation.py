"""Training the delineation task in rounds (zoo/tasks/delineation.py, zoo/callbacks/rounds.py) on the fake NYC graph."""

import pandas as pd
import pytest

from tests.graph_fakes import FAKE_ZIPS
from zoo.run.runner import train


def test_delineation_rounds_write_history_and_predictions(make_cfg, tmp_path):
    cfg = make_cfg("experiment=delineation_nyc_zip", "model.epochs_per_round=3", "model.max_rounds=2",
                   "model.tol=-1.0", "trainer.max_epochs=6")
    metrics, objects = train(cfg)
    rounds = pd.read_csv(tmp_path / "rounds.csv")
    assert list(rounds["round"]) == [0, 1]
    assert {"round/train_acc", "round/val_acc", "round/test_acc"} <= set(rounds.columns)
    model = objects["model"]  # the tested (best) checkpoint carries its round's input tracks
    assert model.track_train.numel() == (0 if int(model.round) == 0 else len(FAKE_ZIPS) * 5)
    table = pd.read_csv(tmp_path / "predictions.csv")
    assert len(table) == len(FAKE_ZIPS) and set(table.split) == {"train", "val", "test"}
    assert table.loc[table.split == "test", "correct"].mean() == pytest.approx(metrics["test/acc"])
