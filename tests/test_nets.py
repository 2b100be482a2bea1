"""Every network of every model config, on a real batch of every compatible (fake) dataset."""

import pytest
import torch
from hydra.utils import instantiate

from tests.conftest import PAIRS
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
