"""Every network of every model config, on a real batch of every compatible (fake) dataset."""

import pytest
import torch
from hydra.utils import instantiate

from tests.conftest import PAIRS
from zoo.nets.gat import GAT
from zoo.run.facts import load_data


@pytest.mark.parametrize(("model", "data"), PAIRS, ids=[f"{m}-{d}" for m, d in PAIRS])
def test_logits_shape_and_every_parameter_gets_a_gradient(make_cfg, model, data):
    cfg = make_cfg(f"model={model}", f"data={data}")
    torch.manual_seed(0)
    datamodule = load_data(cfg)
    batch = next(iter(datamodule.train_dataloader()))
    task = instantiate(cfg.model)
    task.train()

    logits, y = task.forward_batch(batch, "train")

    assert logits.shape == (y.shape[0], cfg.facts.num_classes)
    assert logits.dtype == torch.float32
    torch.nn.functional.cross_entropy(logits, y).backward()
    for name, param in task.named_parameters():
        assert param.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(param.grad).all(), f"{name} has a non-finite gradient"
    assert any(p.grad.abs().sum() > 0 for p in task.parameters())


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_rnn_reads_rows_with_every_cell(cell):
    from zoo.nets.rnn import RNN

    net = RNN(input_size=28, num_classes=10, cell=cell, hidden_size=16)
    x = torch.randn(3, 1, 28, 28)
    assert net(x).shape == (3, 10)
    # Changing only the last row changes the output: the final state has read every row.
    x2 = x.clone()
    x2[:, :, -1] += 1.0
    assert not torch.allclose(net(x), net(x2))


def test_rnn_rejects_unknown_cell():
    from zoo.nets.rnn import RNN

    with pytest.raises(ValueError, match="model.net.cell='transformer'.*gru"):
        RNN(input_size=28, num_classes=10, cell="transformer")


def test_mlp_hidden_sizes_and_dropout_are_used():
    from zoo.nets.mlp import MLP

    net = MLP(in_features=784, num_classes=10, hidden_sizes=[32, 16], dropout=0.5)
    widths = [m.out_features for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [32, 16, 10]
    assert sum(isinstance(m, torch.nn.Dropout) and m.p == 0.5 for m in net.modules()) == 2


def test_cnn_batch_norm_switch():
    from zoo.nets.cnn import CNN

    with_bn = CNN(1, 28, 28, 10, channels=[4, 8], batch_norm=True)
    without = CNN(1, 28, 28, 10, channels=[4, 8], batch_norm=False)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in with_bn.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in without.modules())
    assert with_bn(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_cnn_convs_per_block():
    from zoo.nets.cnn import CNN

    net = CNN(1, 28, 28, 10, channels=[4, 8, 16], convs_per_block=2, hidden=0)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(1, 4), (4, 4), (4, 8), (8, 8), (8, 16), (16, 16)]
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in net.modules()) == 3
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 10)  # 28 -> 14 -> 7 -> 3: the head's width fits


def _graph(num_nodes: int = 6, in_features: int = 4) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A small undirected ring with random features and random positive edge weights."""
    src = torch.arange(num_nodes)
    edge_index = torch.cat([torch.stack([src, (src + 1) % num_nodes]), torch.stack([(src + 1) % num_nodes, src])], 1)
    return torch.randn(num_nodes, in_features), edge_index, torch.rand(edge_index.shape[1]) + 0.1


@pytest.mark.parametrize(("name", "reads_weights"), [("gcn.GCN", True), ("appnp.APPNP", True), ("sgc.SGC", True),
                                                     ("gcnii.GCNII", True), ("gat.GAT", False),
                                                     ("graphsage.GraphSAGE", False), ("gin.GIN", False)])
def test_graph_nets_read_edge_weights_only_where_their_convolution_takes_them(name, reads_weights):
    from hydra.utils import get_class

    torch.manual_seed(0)
    kwargs = {"num_layers": 2} if name.startswith("gcnii") else {}
    net = get_class(f"zoo.nets.{name}")(in_features=4, num_classes=3, **kwargs).eval()
    x, edge_index, edge_weight = _graph()
    with torch.no_grad():
        changed = not torch.allclose(net(x, edge_index), net(x, edge_index, edge_weight))
    assert changed == reads_weights


def test_gcnii_gives_its_convolutions_their_own_weight_decay(make_cfg):
    cfg = make_cfg("model=gcnii", "data=cora", "model.net.num_layers=2")
    load_data(cfg)
    task = instantiate(cfg.model)
    optimizer = task.configure_optimizers()
    decays = [g["weight_decay"] for g in optimizer.param_groups]
    assert decays == [cfg.model.net.conv_weight_decay, cfg.model.optimizer.weight_decay]
    grouped = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert grouped == {id(p) for p in task.parameters()}  # every parameter is trained, once


@pytest.mark.parametrize(("output_heads", "expected"), [(None, 8), (1, 1), (2, 2)])
def test_gat_output_heads_set_only_the_last_layer(output_heads, expected):
    net = GAT(10, 3, heads=8, output_heads=output_heads)
    first, last = net.gnn.convs
    assert (first.heads, first.concat) == (8, True)
    assert (last.heads, last.concat, last.out_channels) == (expected, False, 3)
    assert net(torch.rand(5, 10), torch.tensor([[0, 1, 2], [1, 2, 3]])).shape == (5, 3)
