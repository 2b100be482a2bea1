"""The NYC predictions table and map (zoo/callbacks/nyc_outputs.py)."""

from types import SimpleNamespace
from unittest.mock import Mock

import pandas as pd
import pytest
import torch
from torch_geometric.data import Data

from zoo.callbacks.nyc_outputs import NYCOutputs, plot_map


def test_nyc_map_is_skipped_with_a_warning_without_shapefile(tmp_path):
    table = pd.DataFrame({"zip": [10001], "split": ["test"], "predicted_borough": ["Manhattan"], "correct": [True]})
    with pytest.warns(UserWarning, match="shapefile"):
        assert plot_map(table, tmp_path / "none.shp", ("Manhattan",)) is None


def test_nyc_map_colours_each_zip_and_goes_to_the_loggers(tmp_path, monkeypatch):
    gpd = pytest.importorskip("geopandas")
    from lightning.pytorch.loggers import TensorBoardLogger
    from shapely.geometry import box
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from zoo.callbacks import nyc_outputs

    shapefile = tmp_path / "ZIP_CODE_040114.shp"
    gpd.GeoDataFrame({"ZIPCODE": ["10001", "11201", "99999"]},
                     geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1), box(2, 0, 3, 1)], crs="EPSG:2263").to_file(shapefile)
    table = pd.DataFrame({"zip": [10001, 11201], "split": ["test", "train"],
                          "predicted_borough": ["Manhattan", "Manhattan"], "correct": [True, False]})
    fig = plot_map(table, shapefile, ("Manhattan", "Brooklyn"))
    (ax,) = fig.axes
    assert ax.get_title() == "Predicted borough per ZIP (1 wrong of 2; test accuracy 1.000 on 1 ZIPs)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Manhattan", "Brooklyn", "wrong",
                                                                   "not in the graph"]

    # The callback writes the predictions and the PNG, and sends the same figure to TensorBoard.
    monkeypatch.setattr(nyc_outputs, "plot_map", lambda *args: fig)
    data = Data(num_nodes=2, zip=torch.tensor([10001, 11201]), y=torch.tensor([0, 1]),
                train_mask=torch.tensor([False, True]), val_mask=torch.tensor([False, False]),
                test_mask=torch.tensor([True, False]))
    logger = TensorBoardLogger(tmp_path, name=None, version="")
    trainer = SimpleNamespace(datamodule=SimpleNamespace(data=data, shapefile=str(shapefile),
                                                         class_names=["Manhattan", "Brooklyn"]),
                              is_global_zero=True, fast_dev_run=False, loggers=[logger], global_step=3,
                              default_root_dir=str(tmp_path))
    module = Mock(training=False, device="cpu")
    module.forward_batch.return_value = (torch.tensor([[2.0, 0.0], [2.0, 0.0]]), None)
    NYCOutputs().on_test_end(trainer, module)
    logger.experiment.flush()
    assert (tmp_path / "predictions_map.png").stat().st_size > 0
    written = pd.read_csv(tmp_path / "predictions.csv")
    assert list(written.predicted_borough) == ["Manhattan", "Manhattan"] and list(written.correct) == [True, False]
    assert EventAccumulator(str(tmp_path)).Reload().Tags()["images"] == ["predictions_map"]
