"""The NYC ZIP commuting graph (datamodules/nyc_zip.py, datamodules/nyc_zip_dataset.py) read from fake CSVs."""

import numpy as np
import pandas as pd
import pytest
import torch

from datamodules.nyc_zip import NYCZipDataModule, stratified_masks
from datamodules.nyc_zip_dataset import NYCZipDataset, read_features, read_flows
from tests.graph_fakes import FAKE_ACS_MISSING, FAKE_HOME_ONLY, FAKE_ZIPS
from zoo.errors import DataNotFoundError


def test_nyc_preprocessing_of_fake_csvs(data_dir):
    raw = data_dir / "nyc_zip" / "raw"
    zips, nodes, edges = read_flows(raw)
    assert list(zips) == sorted(FAKE_ZIPS) and FAKE_HOME_ONLY not in set(edges.h_zip)
    features = read_features(raw, zips)
    assert list(features.index) == list(zips)  # aligned by ZIP, not by row position
    missing = features.loc[list(FAKE_ACS_MISSING)]
    assert missing[["population", "house_value", "income"]].isna().all().all()
    assert missing[["area", "jobs"]].notna().all().all()
    area = pd.read_csv(raw / "zips_area.csv")
    first = sorted(FAKE_ZIPS)[0]
    assert features.loc[first, "area"] == pytest.approx(area.loc[area.ZIPCODE.eq(first), "AREA"].sum())
    jobs = pd.read_csv(raw / "zipcode_population_Jobs.csv").set_index("ZIPCODE")
    assert np.allclose(features["jobs"], jobs.loc[zips, "totalJobs"])

    data = NYCZipDataset(data_dir / "nyc_zip", download=False)[0]
    assert data.num_nodes == len(FAKE_ZIPS) and data.x.shape == (len(FAKE_ZIPS), 5)
    assert torch.equal(data.zip, torch.tensor(sorted(FAKE_ZIPS)))
    assert torch.equal(data.y, torch.tensor([FAKE_ZIPS[z] - 1 for z in sorted(FAKE_ZIPS)]))
    assert data.initial_feat.shape == data.y.shape and (data.initial_feat != data.y).any()
    rows = [sorted(FAKE_ZIPS).index(z) for z in FAKE_ACS_MISSING]
    assert data.x_missing[rows][:, [0, 1, 3]].all() and data.x_missing.sum() >= 6  # + the empty income value
    assert data.x.min() >= 0 and data.x.max() <= 1 and torch.isfinite(data.x).all()
    merged = pd.read_csv(raw / "zips_merged.csv")
    kept = merged[merged.h_zip != FAKE_HOME_ONLY]
    assert data.edge_index.size(1) == len(kept) and data.edge_weight.sum() == kept.total.sum()


def test_nyc_split_is_seeded_stratified_and_disjoint():
    y = torch.arange(50) % 5
    a, b = stratified_masks(y, 0.6, 0.2, seed=3), stratified_masks(y, 0.6, 0.2, seed=3)
    assert all(torch.equal(m, n) for m, n in zip(a, b, strict=True))
    assert not torch.equal(a[0], stratified_masks(y, 0.6, 0.2, seed=4)[0])
    assert (a[0].int() + a[1].int() + a[2].int() == 1).all()
    assert all(int(a[0][y == c].sum()) == 6 for c in range(5))


def test_nyc_feature_options(data_dir):
    dm = NYCZipDataModule(data_dir, download=False, include_acs=False, include_prior=True)
    data = dm.load()
    assert data.x.shape[1] == 5 and torch.equal(data.x.argmax(1), data.initial_feat)


def test_missing_graph_files_name_folder_and_fix(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"zips_merged\.csv.*data\.download=true"):
        NYCZipDataset(tmp_path / "nyc_zip", download=False)
