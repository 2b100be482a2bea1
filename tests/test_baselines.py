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
    rules, operators = capsys.readouterr().out.split("\n\n")
    rules, operators = rules.splitlines(), operators.splitlines()
    assert len(rules) == 2 + 9 * 4 and rules[2].startswith("| ")
    # the prior itself, the paper's operator, then row and sym shares at two self-loop weights
    assert len(operators) == 2 + 1 + 1 + 2 * 2
    assert [line.split(" | ")[0] for line in operators[3:5]] == ["| gcn", "| row, self_loop_weight=0.5"]


# ------------------------------------------------------------------------------ label propagation on Cora's operators
def _star_and_ring(n_leaves: int = 9, ring: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """An undirected graph (both directions listed): a hub joined to ``n_leaves`` leaves, and a ring of ``ring`` nodes
    of which one touches the hub; labels 0 on the leaves, 1 on the ring."""
    hub, leaves = 0, list(range(1, n_leaves + 1))
    ring_nodes = list(range(n_leaves + 1, n_leaves + 1 + ring))
    pairs = [(hub, leaf) for leaf in leaves] + [(hub, ring_nodes[0])]
    pairs += [(ring_nodes[i], ring_nodes[(i + 1) % ring]) for i in range(ring)]
    edge_index = torch.tensor(pairs).T
    y = torch.tensor([0] + [0] * n_leaves + [1] * ring)
    return torch.cat([edge_index, edge_index.flip(0)], dim=1), y


def test_symmetric_label_propagation_is_zhous_closed_form_without_the_clamp():
    """``normalization=symmetric``: the unclamped steps reach (1 - alpha) (I - alpha D^-1/2 A D^-1/2)^-1 Y0, whose
    hub score is above 1 here (PyG's clamp would cut it)."""
    edge_index, y = _star_and_ring()
    n, alpha = y.numel(), 0.9
    y_train = y.clone()
    y_train[0] = y_train[-3:] = -1  # the hub and three ring nodes unlabelled
    a = to_dense_adj(edge_index, max_num_nodes=n)[0].double()
    d = a.sum(1).pow(-0.5)
    s = d[:, None] * a * d[None, :]
    y0 = torch.nn.functional.one_hot(y_train.clamp_min(0), 2).double() * (y_train >= 0)[:, None]
    expected = (1 - alpha) * torch.linalg.solve(torch.eye(n, dtype=torch.float64) - alpha * s, y0)
    assert expected.max() > 1  # the clamp to [0, 1] would change the result
    net = LabelPropagation(2, "out", "symmetric", num_layers=400, alpha=alpha)
    torch.testing.assert_close(net(None, edge_index, None, y_train).double(), expected, atol=1e-5, rtol=1e-4)


def test_fixed_labels_with_row_shares_reach_the_harmonic_solution():
    """``fix_labels=true``, row shares, alpha 1: Zhu et al.'s harmonic function, F_u = (D_uu - A_uu)^-1 A_ul Y_l."""
    edge_index, y = _star_and_ring()
    n = y.numel()
    y_train = y.clone()
    unknown = torch.tensor([0, 3, n - 1, n - 2])
    y_train[unknown] = -1
    known = y_train >= 0
    a = to_dense_adj(edge_index, max_num_nodes=n)[0].double()
    lap = torch.diag(a.sum(1)) - a
    y_l = torch.nn.functional.one_hot(y_train[known], 2).double()
    harmonic = torch.linalg.solve(lap[~known][:, ~known], a[~known][:, known] @ y_l)
    net = LabelPropagation(2, "out", "row", num_layers=2000, alpha=1.0, fix_labels=True)
    scores = net(None, edge_index, None, y_train).double()
    torch.testing.assert_close(scores[~known], harmonic, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(scores[known], y_l)
    loose = LabelPropagation(2, "out", "row", num_layers=2000, alpha=1.0)(None, edge_index, None, y_train).double()
    assert not torch.allclose(loose[~known], harmonic, atol=1e-3)  # without fixing, the labels wash out


def test_label_propagation_refuses_an_unknown_normalization():
    with pytest.raises(ValueError, match=r"model\.net\.normalization='sym'.*symmetric"):
        LabelPropagation(3, normalization="sym")
