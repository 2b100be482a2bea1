"""The delineation network (zoo/nets/delineation_gcn.py) and its layer (zoo/nets/layers/dual_weight_conv.py):
the seed's operator, caching, normalisations, initialisation, masking."""

import pytest
import torch
from torch_geometric.utils import to_dense_adj

from zoo.nets.delineation_gcn import DelineationGCN
from zoo.nets.layers.dual_weight_conv import DualWeightConv, mean_norm, seed_norm


def random_graph(n: int = 9, e: int = 30, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, n, (2, e), generator=g)
    edge_index = torch.unique(edge_index, dim=1)  # some self-flows stay in, as in the commuting graph
    return edge_index, torch.rand(edge_index.size(1), generator=g) * 50


def seed_operator(edge_index: torch.Tensor, edge_weight: torch.Tensor, n: int) -> torch.Tensor:
    """The notebook's ``normalize(adj)``, dense: ``(adj D^-1/2)^T D^-1/2`` with ``D = rowsum(A + I)``."""
    adj = to_dense_adj(edge_index, edge_attr=edge_weight, max_num_nodes=n)[0].double() + torch.eye(n).double()
    d_inv_sqrt = torch.diag(adj.sum(1).pow(-0.5))
    return (adj @ d_inv_sqrt).T @ d_inv_sqrt


@pytest.mark.parametrize("cached", [False, True], ids=["message_passing", "cached_csr"])
def test_sparse_operator_equals_the_seeds_dense_formula(cached):
    n = 9
    edge_index, edge_weight = random_graph(n)
    assert (edge_index[0] == edge_index[1]).any() and not torch.equal(edge_index, edge_index.flip(0))
    layer = DualWeightConv(n, n, cached=cached).double()
    with torch.no_grad():
        layer.weight1.zero_()
        layer.weight2.copy_(torch.eye(n))
    h = torch.rand(n, n, dtype=torch.float64)
    expected = seed_operator(edge_index, edge_weight, n) @ h  # Â H
    torch.testing.assert_close(layer(h, edge_index, edge_weight.double()), expected)
    torch.testing.assert_close(layer(h, edge_index, edge_weight.double()), expected)  # again (from the cache)
    # The operator is not symmetric on a directed graph: the transpose would fail this test.
    assert not torch.allclose(seed_operator(edge_index, edge_weight, n), seed_operator(edge_index, edge_weight, n).T)


def test_cached_propagation_follows_every_change_of_the_input():
    n = 9
    edge_index, edge_weight = random_graph(n)
    cached, fresh = DualWeightConv(n, n, w2_init="kaiming", cached=True), DualWeightConv(n, n, cached=False)
    fresh.load_state_dict(cached.state_dict())

    def same(h: torch.Tensor) -> None:
        torch.testing.assert_close(cached(h, edge_index, edge_weight), fresh(h, edge_index, edge_weight))

    h = torch.rand(n, n)
    same(h)
    assert len(cached._ax) == 1  # Â H kept for the gradient-free input
    same(h)
    h.mul_(3.0)  # edited in place: the kept Â H is stale and must not be used
    same(h)
    same(torch.rand(n, n))  # another tensor
    h_grad = torch.rand(n, n, requires_grad=True)  # an input that needs a gradient is never cached
    out = cached(h_grad, edge_index, edge_weight)
    same(h_grad)
    out.sum().backward()
    assert h_grad.grad is not None and h_grad.grad.abs().sum() > 0
    cached.reset_cache()
    assert cached._adj_t is None and not cached._ax


def test_cached_layer_first_run_under_inference_mode_still_trains():
    # Lightning validates (sanity check) under torch.inference_mode before the first training step.
    n = 9
    edge_index, edge_weight = random_graph(n)
    layer = DualWeightConv(n, n, w2_init="kaiming", cached=True)
    h = torch.rand(n, n)
    with torch.inference_mode():
        layer(h, edge_index, edge_weight)
        layer(torch.rand(n, n), edge_index, edge_weight)
    assert not layer._ax  # nothing computed in inference mode is kept for training
    h_grad = torch.rand(n, n, requires_grad=True)
    (layer(h, edge_index, edge_weight) + layer(h_grad, edge_index, edge_weight)).sum().backward()
    assert layer.weight2.grad is not None and h_grad.grad is not None


def test_mean_norm_rows_are_weighted_means():
    edge_index, edge_weight = random_graph()
    ei, w = mean_norm(edge_index, edge_weight, 9)
    dense = to_dense_adj(ei, edge_attr=w, max_num_nodes=9)[0].T  # row j: weights node j gathers with
    torch.testing.assert_close(dense.sum(1), torch.ones(9))


def test_seed_norm_keeps_existing_self_flow_and_adds_one():
    edge_index, edge_weight = torch.tensor([[0, 0], [0, 1]]), torch.tensor([3.0, 1.0])
    ei, w = seed_norm(edge_index, edge_weight, 2)
    dense = to_dense_adj(ei, edge_attr=w, max_num_nodes=2)[0]
    # A + I = [[4, 1], [0, 1]], D = (5, 1): Â[0, 0] = 4 / 5
    assert dense[0, 0].item() == pytest.approx(4 / 5)


def test_identity_init_leaves_features_unchanged_before_clamping():
    edge_index, edge_weight = random_graph()
    layer = DualWeightConv(5, 5, w2_init="zeros")
    h = torch.randn(9, 5) * 3  # outside [0, 1]: the clamp would change it, the layer must not
    torch.testing.assert_close(layer(h, edge_index, edge_weight), h)
    assert torch.equal(layer.weight1, torch.eye(5)) and not layer.weight2.any()
    kaiming = DualWeightConv(5, 5, w2_init="kaiming")
    assert kaiming.weight2.abs().sum() > 0


def test_masking_leaves_non_training_rows_untouched():
    edge_index, edge_weight = random_graph()
    net = DelineationGCN(5, 5, w2_init="kaiming")
    h = torch.rand(9, 5)
    mask = torch.zeros(9, dtype=torch.bool)
    mask[[1, 4, 6]] = True
    out = net(h, edge_index, edge_weight, update_mask=mask)
    assert torch.equal(out[~mask], h[~mask])
    assert not torch.allclose(out[mask], h[mask])
    torch.testing.assert_close(out[mask].sum(1), torch.ones(3))  # clamped and row-normalised
    assert out.min() >= 0


def test_all_zero_rows_stay_zero_instead_of_nan():
    net = DelineationGCN(3, 3, w2_init="zeros")
    h = torch.tensor([[0.0, 0.0, 0.0], [-1.0, -2.0, -3.0], [0.2, 0.3, 0.5]])
    out = net(h, torch.tensor([[0], [1]]), None)
    assert torch.isfinite(out).all() and not out[:2].any()


def test_delineation_gcn_refuses_feature_width_it_cannot_read_as_scores():
    with pytest.raises(ValueError, match="input_projection=true"):
        DelineationGCN(7, 5)
