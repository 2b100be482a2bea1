"""The NYC predictions table and map (zoo/callbacks/nyc_outputs.py)."""

import pandas as pd
import pytest


def test_nyc_map_is_skipped_with_a_warning_without_shapefile(tmp_path):
    from zoo.callbacks.nyc_outputs import plot_map

    table = pd.DataFrame({"zip": [10001], "split": ["test"], "predicted_borough": ["Manhattan"], "correct": [True]})
    with pytest.warns(UserWarning, match="shapefile"):
        assert plot_map(table, tmp_path / "none.shp", tmp_path / "map.png", ("Manhattan",)) is None
