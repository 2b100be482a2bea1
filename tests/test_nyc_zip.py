"""The NYC ZIP commuting graph (datamodules/nyc_zip.py, datamodules/nyc_zip_dataset.py) read from fake CSVs."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch_geometric.nn.models import GCN as PyGGCN
from torch_geometric.utils import to_dense_adj

from datamodules.nyc_zip import NYCZipDataModule
from datamodules.nyc_zip_dataset import NYCZipDataset, read_features, read_flows
from datamodules.splits import random_split_masks
from tests.graph_fakes import FAKE_ACS_MISSING, FAKE_HOME_ONLY, FAKE_ZIPS
from zoo.errors import DataNotFoundError
from zoo.nets.gcn import GCN
from zoo.run.runner import train
from zoo.transforms.share_operator import share_operator


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
    a, b = random_split_masks(y, 0.6, 0.2, seed=3), random_split_masks(y, 0.6, 0.2, seed=3)
    assert all(torch.equal(m, n) for m, n in zip(a, b, strict=True))
    assert not torch.equal(a[0], random_split_masks(y, 0.6, 0.2, seed=4)[0])
    assert (a[0].int() + a[1].int() + a[2].int() == 1).all()
    assert all(int(a[0][y == c].sum()) == 6 for c in range(5))


def test_nyc_feature_options(data_dir):
    dm = NYCZipDataModule(data_dir, download=False, include_acs=False, include_prior=True)
    data = dm.load()
    assert data.x.shape[1] == 5 and torch.equal(data.x.argmax(1), data.initial_feat)


def test_missing_graph_files_name_folder_and_fix(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"zips_merged\.csv.*data\.download=true"):
        NYCZipDataset(tmp_path / "nyc_zip", download=False)


def dense_operator(edge_index: torch.Tensor, edge_weight: torch.Tensor, n: int, w: float, operator: str
                   ) -> torch.Tensor:
    """The share operator, dense and written out: ``W = A + A^T`` without self-flows, ``M = W + w D``, rows or both
    sides normalised by ``(1 + w) D``; row ``i`` holds what node ``i`` gathers."""
    adj = to_dense_adj(edge_index, edge_attr=edge_weight, max_num_nodes=n)[0].double()
    undirected = adj + adj.T
    undirected.fill_diagonal_(0.0)
    degree = undirected.sum(1)
    matrix = undirected + torch.diag(w * degree)
    total = (1 + w) * degree
    if operator == "row":
        return matrix / total.view(-1, 1)
    return matrix / total.sqrt().view(-1, 1) / total.sqrt().view(1, -1)


@pytest.mark.parametrize("operator", ["row", "sym"])
@pytest.mark.parametrize("w", [0.5, 1.0])
def test_share_operators_on_the_nyc_flows_match_their_formulas(data_dir, operator, w):
    data = NYCZipDataset(data_dir / "nyc_zip", download=False)[0]
    n = data.num_nodes
    assert (data.edge_index[0] == data.edge_index[1]).any()  # self-flows, dropped by the operator
    index, weight = share_operator(data.edge_index, data.edge_weight, n, operator, w)
    got = to_dense_adj(index, edge_attr=weight, max_num_nodes=n)[0].double().T  # [gatherer, sender]
    expected = dense_operator(data.edge_index, data.edge_weight.double(), n, w, operator)
    torch.testing.assert_close(got, expected)
    if operator == "row":  # a weighted mean: rows sum to 1, the ZIP's own share is w / (1 + w)
        torch.testing.assert_close(got.sum(1), torch.ones(n, dtype=got.dtype))
        torch.testing.assert_close(got.diagonal(), torch.full((n,), w / (1 + w), dtype=got.dtype))
    else:
        torch.testing.assert_close(got, got.T)
    assert not torch.allclose(got, dense_operator(data.edge_index, data.edge_weight.double(), n, w + 1, operator))


def test_share_operator_keeps_an_isolated_node_and_refuses_bad_input():
    edge_index, edge_weight = torch.tensor([[0, 1], [1, 0]]), torch.tensor([3.0, 5.0])
    for operator in ("row", "sym"):
        index, weight = share_operator(edge_index, edge_weight, 3, operator, 1.0)
        dense = to_dense_adj(index, edge_attr=weight, max_num_nodes=3)[0]
        assert dense[2].tolist() == [0.0, 0.0, 1.0] and dense[:, 2].tolist() == [0.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="operator='raw'"):
        share_operator(edge_index, edge_weight, 3, "raw")
    with pytest.raises(ValueError, match="self_loop_weight=0"):
        share_operator(edge_index, edge_weight, 3, "row", 0.0)
    with pytest.raises(ValueError, match="non-negative"):
        share_operator(edge_index, -edge_weight, 3, "row")


@pytest.mark.parametrize("operator", ["row", "sym"])
def test_gcn_propagates_over_the_share_operator(data_dir, operator):
    data = NYCZipDataset(data_dir / "nyc_zip", download=False)[0]
    torch.manual_seed(0)
    net = GCN(5, 5, num_layers=1, dropout=0.0, cached=True, operator=operator, self_loop_weight=0.5).eval()
    conv = net.gnn.convs[0]
    matrix = dense_operator(data.edge_index, data.edge_weight.double(), data.num_nodes, 0.5, operator).float()
    expected = matrix @ conv.lin(data.x) + conv.bias
    torch.testing.assert_close(net(data.x, data.edge_index, data.edge_weight), expected)
    paper = GCN(5, 5, num_layers=1, dropout=0.0, operator="gcn").eval()
    paper.load_state_dict(net.state_dict())
    assert not torch.allclose(paper(data.x, data.edge_index, data.edge_weight), expected, atol=1e-3)


def test_gcn_default_operator_is_pygs_gcn():
    """operator=gcn (Cora's) is PyG's GCN as it is: gcn_norm inside GCNConv, same weights, same output."""
    edge_index = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
    x = torch.randn(4, 6)
    torch.manual_seed(0)
    net = GCN(6, 3, dropout=0.0).eval()
    pyg = PyGGCN(6, 16, 2, out_channels=3).eval()
    pyg.load_state_dict(net.gnn.state_dict())
    assert net.gnn.convs[0].normalize
    torch.testing.assert_close(net(x, edge_index), pyg(x, edge_index))


def test_gcn_nyc_experiment_trains_with_its_share_operator(make_cfg):
    cfg = make_cfg("experiment=gcn_nyc_zip", "trainer.max_epochs=3", "callbacks.nyc_outputs=null")
    assert cfg.model.net.operator in ("row", "sym")
    metrics, objects = train(cfg)
    assert objects["model"].net.operator == cfg.model.net.operator and 0 <= metrics["test/acc"] <= 1
