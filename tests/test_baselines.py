"""NYC baselines: the one flow operator, the rule-based nets, the flow-share features, the paired comparison."""

import itertools
import json
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from torch_geometric.utils import to_dense_adj

from datamodules.nyc_zip import NYCZipDataModule
from zoo.errors import ConfigError
from zoo.nets.flow_vote import FlowVote
from zoo.nets.label_propagation import LabelPropagation
from zoo.report.main import main as report_main
from zoo.run.runner import train
from zoo.transforms.flow_shares import DIRECTIONS, NORMALIZATIONS, flow_operator, flow_votes


def flow_graph(n: int = 7, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A random weighted directed graph with some self-flows."""
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.unique(torch.randint(0, n, (2, 25), generator=g), dim=1)
    return edge_index, torch.rand(edge_index.size(1), generator=g) * 100


def dense_operator(edge_index: torch.Tensor, weight: torch.Tensor, n: int, direction: str, norm: str) -> torch.Tensor:
    """The module docstring's ``M``, dense: ``A[i, j]`` = weight of ``i -> j`` without self-flows."""
    a = to_dense_adj(edge_index, edge_attr=weight, max_num_nodes=n)[0].double()
    a.fill_diagonal_(0)

    def normalise(m: torch.Tensor) -> torch.Tensor:
        if norm == "row":
            return m / m.sum(1, keepdim=True).clamp_min(1e-300)
        if norm == "column":
            return m / m.sum(0, keepdim=True).clamp_min(1e-300)
        return m

    return {"out": normalise(a), "in": normalise(a.T), "symmetric": normalise(a) + normalise(a.T)}[direction]


@pytest.mark.parametrize(("direction", "norm"), list(itertools.product(DIRECTIONS, NORMALIZATIONS)))
def test_flow_operator_equals_its_dense_definition(direction, norm):
    n = 7
    edge_index, weight = flow_graph(n)
    index, w = flow_operator(edge_index, weight, n, direction, norm)
    x = torch.randn(n, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    gathered = torch.zeros(n, 3, dtype=torch.float64).index_add_(0, index[1], w.double().unsqueeze(1) * x[index[0]])
    # The operator's weights are float32 (the data's dtype): compared at float32's resolution, not float64's.
    torch.testing.assert_close(gathered, dense_operator(edge_index, weight, n, direction, norm) @ x, rtol=1e-5, atol=1e-6)


def test_in_direction_reads_against_the_edges():
    """NYC: ``0 -> 1`` is 0's workers living in 1; ``out`` lets work ZIP 0 read home ZIP 1, ``in`` the reverse."""
    edge_index, weight = torch.tensor([[0], [1]]), torch.tensor([5.0])
    assert flow_operator(edge_index, weight, 2, "out", "raw")[0].tolist() == [[1], [0]]  # 1 sends, 0 gathers
    assert flow_operator(edge_index, weight, 2, "in", "raw")[0].tolist() == [[0], [1]]


def test_flow_votes_read_training_labels_only():
    n = 7
    edge_index, weight = flow_graph(n)
    y_train = torch.tensor([0, -1, 1, -1, 2, 0, -1])
    votes = flow_votes(edge_index, weight, y_train, 3, "symmetric", "column")
    assert votes.shape == (n, 3)
    sums = votes.sum(1)
    assert torch.all((sums - 1).abs().lt(1e-5) | sums.eq(0))  # shares, or no labelled neighbour at all
    dense = dense_operator(edge_index, weight, n, "symmetric", "column")
    expected = dense[:, y_train >= 0] @ torch.nn.functional.one_hot(y_train[y_train >= 0], 3).double()
    torch.testing.assert_close(votes.double(), expected / expected.sum(1, keepdim=True).clamp_min(1e-300),
                               rtol=1e-5, atol=1e-6)


def test_raw_and_row_shares_give_the_same_vote_but_column_shares_can_differ():
    n = 30
    edge_index, weight = flow_graph(n, seed=3)
    y_train = torch.arange(n) % 3
    y_train[::4] = -1
    votes = {norm: flow_votes(edge_index, weight, y_train, 3, "out", norm) for norm in NORMALIZATIONS}
    torch.testing.assert_close(votes["raw"], votes["row"])
    assert not torch.allclose(votes["raw"], votes["column"])


@pytest.mark.parametrize("net", [FlowVote(3), LabelPropagation(3, num_layers=3)], ids=["flow_vote", "label_prop"])
def test_rule_nets_predict_the_same_after_training(net):
    """Only the temperature trains: a positive scale never changes the argmax."""
    n = 20
    edge_index, weight = flow_graph(n, seed=1)
    y_train = torch.arange(n) % 3
    y_train[::3] = -1
    before = net(None, edge_index, weight, y_train).argmax(1)
    with torch.no_grad():
        net.scale.log_temperature.fill_(3.0)
    assert torch.equal(net(None, edge_index, weight, y_train).argmax(1), before)
    assert [name for name, _ in net.named_parameters()] == ["scale.log_temperature"]


def test_flow_share_features_come_from_training_labels(data_dir):
    plain = NYCZipDataModule(data_dir, download=False, include_acs=False, include_prior=True)
    shares = NYCZipDataModule(data_dir, download=False, include_acs=False, include_prior=True, flow_shares=True,
                              flow_directions=["out", "in", "symmetric"])
    plain.setup(), shares.setup()
    data = shares.data
    assert data.x.shape[1] == 5 + 3 * 5 and shares.facts()["num_features"] == 20
    torch.testing.assert_close(data.x[:, :5], plain.data.x)
    expected = flow_votes(data.edge_index, data.edge_weight, data.y_train, 5, "in", "column")
    torch.testing.assert_close(data.x[:, 10:15], expected)
    assert torch.equal(data.y_train[data.train_mask], data.y[data.train_mask])
    assert (data.y_train[~data.train_mask] == -1).all()


def test_bad_flow_options_name_the_key(data_dir):
    with pytest.raises(ConfigError, match=r"data.flow_directions\[1\]='sideways'"):
        NYCZipDataModule(data_dir, download=False, flow_shares=True, flow_directions=["out", "sideways"])
    with pytest.raises(ConfigError, match="data.flow_normalization='sum'"):
        NYCZipDataModule(data_dir, download=False, flow_normalization="sum")


def test_a_model_needing_an_attribute_the_data_lacks_is_refused(make_cfg):
    with pytest.raises(ConfigError, match=r"model=prior works on graph data with attribute\(s\) initial_feat, but "
                                          r"data=cora is graph data without initial_feat: use model=prior with "
                                          r"data=nyc_zip"):
        train(make_cfg("model=prior", "data=cora"))


@pytest.mark.parametrize("experiment", ["prior_nyc_zip", "flow_vote_nyc_zip", "label_propagation_nyc_zip"])
def test_rule_baselines_run_as_zoo_models(make_cfg, tmp_path, experiment):
    metrics, _ = train(make_cfg(f"experiment={experiment}", "data.download=false", "logger=none",
                                "callbacks.progress_bar.refresh_rate=0"))
    assert metrics["params"] == 1 and 0 <= metrics["test/acc"] <= 1
    assert json.loads((tmp_path / "metrics.json").read_text())["test/acc"] == metrics["test/acc"]
    assert (tmp_path / "predictions.csv").is_file()


def fake_run(root: Path, name: str, model: str, seed: int, acc: float) -> Path:
    run = root / name
    (run / ".hydra").mkdir(parents=True)
    choices = {"hydra": {"runtime": {"choices": {"model": model, "data": "nyc_zip"}}}}
    (run / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(choices))
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"model": {}, "data": {}}))  # as Hydra writes one
    (run / "metrics.json").write_text(json.dumps({"test/acc": acc, "seed": seed, "params": 1.0}))
    (run / "predictions_map.png").write_bytes(f"{model}-{seed}".encode())
    return run


def test_paired_table_and_best_map(tmp_path, capsys):
    accs = {"a": [0.90, 0.95, 0.93], "b": [0.80, 0.95, 0.96]}
    for i, (model, seed) in enumerate(itertools.product(accs, range(3))):
        fake_run(tmp_path, f"{i}_{model}", model, seed, accs[model][seed])
    report_main([str(tmp_path)])
    table = pd.read_csv(tmp_path / "paired_nyc_zip.csv", index_col="seed")
    assert list(table.columns) == ["a", "b"] and table.loc[2, "b"] == 0.96
    text = (tmp_path / "paired.md").read_text()
    assert "| b | 3 | 0.903 ± 0.090 | -0.023 ± 0.068 | 1 / 1 / 1 |" in text
    assert (tmp_path / "best_map_nyc_zip.png").read_bytes() == b"a-2"  # a's median seed (0.93)
    assert (tmp_path / "leaderboard.md").is_file() and "paired" in capsys.readouterr().out


def test_operator_table_runs_on_fake_data(data_dir, capsys):
    from benchmarks.nyc_operators import main

    main(["--data-dir", str(data_dir), "--seeds", "2"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 + 9 * 4 and lines[2].startswith("| ")
