"""Training the delineation task (zoo/tasks/delineation.py, with its rounds callback) on the fake NYC graph, and the
model's options: flow-share operator, two directions, training labels as input, rows-only training passes, steps per
Lightning epoch, the seed's lowest-loss rounds, and the dense path."""

import os
from unittest import mock

import lightning as L
import pandas as pd
import pytest
import torch
from hydra.utils import instantiate
from torch_geometric.utils import to_dense_adj

from tests.faults import Crash
from tests.graph_fakes import FAKE_ZIPS
from tests.test_delineation_gcn import random_graph
from zoo.nets.delineation_gcn import DelineationGCN
from zoo.nets.layers.dual_weight_conv import DualWeightConv, share_norm
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


def dense_share(edge_index: torch.Tensor, edge_weight: torch.Tensor, n: int) -> torch.Tensor:
    """``D_in^-1 A^T`` without self-flows, dense: row ``j`` holds the shares of ``j``'s incoming flows."""
    adj = to_dense_adj(edge_index, edge_attr=edge_weight, max_num_nodes=n)[0].double()
    adj.fill_diagonal_(0.0)
    return adj.T / adj.T.sum(1, keepdim=True).clamp_min(1e-12)


def test_share_norm_is_the_mean_over_the_other_nodes_flows():
    n = 9
    edge_index, edge_weight = random_graph(n)
    assert (edge_index[0] == edge_index[1]).any()  # self-flows present: they must not count
    index, norm = share_norm(edge_index, edge_weight, n)
    got = to_dense_adj(index.flip(0), edge_attr=norm, max_num_nodes=n)[0].double()  # row j gathers
    torch.testing.assert_close(got, dense_share(edge_index, edge_weight, n))
    assert not got.diagonal().any()


@pytest.mark.parametrize("cached", [False, True])
def test_two_directions_add_the_reversed_operator_with_its_own_weight(cached):
    n = 9
    edge_index, edge_weight = random_graph(n)
    layer = DualWeightConv(5, 5, normalization="share", cached=cached, directions=2).double()
    w2, w2r = torch.randn(5, 5, dtype=torch.float64), torch.randn(5, 5, dtype=torch.float64)
    with torch.no_grad():
        layer.weight2.copy_(w2)
        layer.weight2_reverse.copy_(w2r)
    h, m = torch.rand(n, 5, dtype=torch.float64), torch.rand(n, 5, dtype=torch.float64)
    fwd, rev = dense_share(edge_index, edge_weight, n), dense_share(edge_index.flip(0), edge_weight, n)
    expected = h + fwd @ m @ w2 + rev @ m @ w2r  # W1 = I
    torch.testing.assert_close(layer(h, edge_index, edge_weight.double(), messages=m), expected)
    rows = torch.tensor([0, 3, 4])
    torch.testing.assert_close(layer(h, edge_index, edge_weight.double(), messages=m, rows=rows), expected[rows])


@pytest.mark.parametrize("activation", ["clamp", "none"])
def test_rows_only_pass_equals_the_full_pass_on_those_rows(activation):
    edge_index, edge_weight = random_graph()
    net = DelineationGCN(5, 5, w2_init="kaiming", activation=activation, log_output=True, cached=True)
    h = torch.rand(9, 5)
    mask = torch.zeros(9, dtype=torch.bool)
    mask[[1, 4, 6]] = True
    full_logits, full_scores = net.logits(h, edge_index, edge_weight, mask, project=False)
    logits, scores = net.logits(h, edge_index, edge_weight, mask, project=False, rows=mask)
    torch.testing.assert_close(logits, full_logits[mask])
    torch.testing.assert_close(scores, full_scores[mask])
    torch.testing.assert_close(full_scores[~mask], h[~mask])  # the other rows keep their input


def test_dense_path_gives_the_sparse_result():
    edge_index, edge_weight = random_graph()
    sparse = DualWeightConv(5, 5, "kaiming", cached=True, dense_below=0)
    dense = DualWeightConv(5, 5, "kaiming", cached=True, dense_below=100)
    dense.load_state_dict(sparse.state_dict())
    h = torch.rand(9, 5)
    torch.testing.assert_close(dense(h, edge_index, edge_weight), sparse(h, edge_index, edge_weight))
    assert dense._adj_t[0].layout == torch.strided and sparse._adj_t[0].layout == torch.sparse_csr


def test_known_rows_send_their_labels_but_never_their_own():
    """With the training labels as input, a node's output never reads its own label (no self-flows)."""
    edge_index, edge_weight = random_graph()
    net = DelineationGCN(5, 5, w2_init="kaiming", normalization="share", directions=2, activation="none")
    h = torch.full((9, 5), 0.2)
    known_mask = torch.zeros(9, dtype=torch.bool)
    known_mask[[0, 2, 5]] = True
    labels = torch.eye(5)[torch.tensor([0, 1, 2, 3, 4, 0, 1, 2, 3])]
    out = net(h, edge_index, edge_weight, known=(known_mask, labels))
    for i in known_mask.nonzero().view(-1).tolist():
        changed = labels.clone()
        changed[i] = torch.eye(5)[(int(labels[i].argmax()) + 1) % 5]  # only node i's own label differs
        torch.testing.assert_close(net(h, edge_index, edge_weight, known=(known_mask, changed))[i], out[i])


def test_an_epoch_runs_steps_per_epoch_optimizer_steps_and_held_out_labels_do_not_matter(make_cfg):
    overrides = ("experiment=delineation_nyc_zip", "model.steps_per_epoch=7", "model.max_rounds=2", "test=false",
                 "callbacks.nyc_outputs=null")
    _, objects = train(make_cfg(*overrides))
    model, trainer = objects["model"], objects["trainer"]
    assert trainer.current_epoch == 2 and int(model.round) == 1  # one Lightning epoch a round
    state = trainer.optimizers[0].state[model.net.layers[0].weight1]
    assert int(state["step"]) == 7  # cleared at the round's end, then 7 steps in round 1
    data = objects["datamodule"].data
    held_out = ~data.train_mask
    before = model.scores(data, "val")
    data.y[held_out] = data.y[held_out].roll(1)
    torch.testing.assert_close(model.scores(data, "val"), before)


@pytest.mark.parametrize("round_output", ["lowest_loss", "final"])
def test_seed_rounds_continue_from_the_lowest_loss_weights(make_cfg, round_output):
    """Gradient ascent makes every step's loss higher: the lowest loss is the first step's, so with
    ``round_output=lowest_loss`` round 1 reads the initial weights' output, with ``final`` the last weights'."""
    overrides = ("experiment=delineation_seed", "model.steps_per_epoch=5", "model.max_rounds=2",
                 f"model.round_output={round_output}", "+model.optimizer.maximize=true", "model.optimizer.lr=0.001",
                 "test=false", "callbacks.nyc_outputs=null")
    _, objects = train(make_cfg(*overrides))
    model, data, cfg = objects["model"], objects["datamodule"].data, objects["cfg"]
    assert int(model.round) == 1
    with mock.patch.dict(os.environ):  # seed_everything records the seed in os.environ
        L.seed_everything(cfg.seed, workers=True)  # as the runner does before building the model
    initial = instantiate(cfg.model).scores(data, "train")
    same = torch.allclose(model.track_train, initial)
    assert same == (round_output == "lowest_loss")


ROUNDS = {  # experiment: overrides for 4 short rounds (1 Lightning epoch each) on the fake graph
    "delineation_seed": ["model.steps_per_epoch=30", "model.max_rounds=4", "model.tol=-1.0", "model.optimizer.lr=0.01"],
    "delineation_nyc_zip": ["model.steps_per_epoch=30", "model.max_rounds=4", "model.tol=-1.0",
                            "callbacks.model_checkpoint.monitor=val/acc"],
}


@pytest.mark.parametrize("experiment", ROUNDS)
def test_run_stopped_between_rounds_resumes_into_the_same_rounds(make_cfg, tmp_path, experiment):
    overrides = [f"experiment={experiment}", "seed=3", *ROUNDS[experiment]]
    metrics, _ = train(make_cfg(*overrides, output_dir=tmp_path / "reference"))
    reference = pd.read_csv(tmp_path / "reference" / "rounds.csv")
    assert list(reference["round"]) == [0, 1, 2, 3]

    stopped = tmp_path / "stopped"
    with pytest.raises(Crash):  # stopped at the start of round 2: last.ckpt holds the end of round 1
        train(make_cfg(*overrides, "+callbacks.crash._target_=tests.faults.CrashAt", "+callbacks.crash.epoch=2",
                       output_dir=stopped))
    resumed, _ = train(make_cfg(*overrides, "ckpt_path=last", output_dir=stopped))
    pd.testing.assert_frame_equal(pd.read_csv(stopped / "rounds.csv"), reference)  # no round repeated or skipped
    assert {k: v for k, v in resumed.items() if k != "fit_seconds"} == {
        k: v for k, v in metrics.items() if k != "fit_seconds"}


@pytest.mark.parametrize("experiment", ROUNDS)
def test_best_checkpoint_holds_the_model_its_score_was_measured_on(make_cfg, tmp_path, experiment):
    metrics, objects = train(make_cfg(f"experiment={experiment}", "seed=3", *ROUNDS[experiment]))
    trainer, model = objects["trainer"], objects["model"]
    [val] = trainer.validate(model, datamodule=objects["datamodule"], ckpt_path="best", verbose=False)
    assert val["val/acc"] == pytest.approx(metrics["val/acc_best"])


def test_prior_start_predicts_the_prior_before_training_and_needs_one(make_cfg):
    """initial_scores=prior: round 0 reads the one-hot initial_feat; with W1 = I and W2 = 0 the model IS the prior."""
    cfg = make_cfg("experiment=delineation_nyc_zip", "model.initial_scores=prior", "model.steps_per_epoch=1",
                   "model.optimizer.lr=1.0e-9", "test=false", "callbacks.nyc_outputs=null")
    _, objects = train(cfg)
    model, data = objects["model"], objects["datamodule"].data
    assert (data.initial_feat != data.y).any()  # the fake prior is wrong on some ZIPs
    assert torch.equal(model.scores(data, "val").argmax(1), data.initial_feat)
    model.hparams.initial_scores = "uniform"
    assert not torch.equal(model.scores(data, "val").argmax(1), data.initial_feat)
    del data.initial_feat
    model.hparams.initial_scores = "prior"
    with pytest.raises(ValueError, match="initial_scores=prior.*initial_feat"):
        model.scores(data, "val")
