"""Every class a config builds refuses an out-of-range argument itself, in one line that names the parameter.

Fast: nothing is trained and no data is read. The networks are covered through their model configs
(``configs/model/*.yaml``), so a new model config is checked without a new test; its numeric keys must have bad
values in :data:`BAD_NET_VALUES` (``test_every_numeric_net_key_has_bad_values``).
"""

import functools
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hydra.utils import get_class
from omegaconf import ListConfig, OmegaConf
from torch import nn

from datamodules.cora import CoraDataModule
from datamodules.mnist import MNISTDataModule
from datamodules.nyc_zip import NYCZipDataModule
from datamodules.splits import KFoldSplit, PerClassSplit, PublicSplit, RandomSplit
from datamodules.tensor_loader import TensorBatchLoader
from zoo import checks
from zoo.nets.delineation_gcn import DelineationGCN
from zoo.tasks import Classifier, DelineationClassifier, NodeClassifier
from zoo.tasks.delineation import DelineationRounds

MODEL_CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs" / "model").glob("*.yaml"))
# Small stand-ins for the data's facts that the model configs read (${facts.<name>}).
FACTS = {"num_features": 6, "num_classes": 3, "in_channels": 1, "height": 8, "width": 8}


# ------------------------------------------------------------------------------------------- zoo.checks
def _refused(check: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ValueError) as err:
        check(*args, **kwargs)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_integer():
    assert checks.integer("n", 1) == 1 and checks.integer("n", 0, low=0) == 0
    assert checks.integer("n", np.int64(3)) == 3
    assert _refused(checks.integer, "n", 0) == "n=0: must be >= 1"
    assert _refused(checks.integer, "n", -1, low=0, note=" (0: none)") == "n=-1: must be >= 0 (0: none)"
    assert _refused(checks.integer, "n", 1.5) == "n=1.5: must be an integer >= 1"
    assert _refused(checks.integer, "n", 2.0) == "n=2.0: must be an integer >= 1"
    assert _refused(checks.integer, "n", True) == "n=True: must be an integer >= 1"  # a boolean is no number
    assert _refused(checks.integer, "n", "8") == "n='8': must be an integer >= 1"
    assert _refused(checks.integer, "n", None) == "n=null: must be an integer >= 1"


def test_number_bounds_are_inclusive_or_exclusive_as_stated():
    assert checks.number("x", 0, 0, 1) == 0 and checks.number("x", 1, 0, 1) == 1
    assert checks.number("x", -5) == -5  # no bounds: any finite number
    assert _refused(checks.number, "x", 0, 0, open_low=True) == "x=0: must be > 0"
    assert _refused(checks.number, "x", -0.1, 0) == "x=-0.1: must be >= 0"
    assert _refused(checks.number, "x", 1.0, 0, 1, open_high=True) == "x=1.0: must be in [0, 1)"
    assert _refused(checks.number, "x", 0.0, 0, 1, open_low=True, open_high=True) == "x=0.0: must be in (0, 1)"
    assert _refused(checks.number, "x", 1.5, 0, 1) == "x=1.5: must be in [0, 1]"
    assert _refused(checks.number, "x", "abc", 0, open_low=True) == "x='abc': must be a number > 0"
    assert _refused(checks.number, "x", True, 0) == "x=True: must be a number >= 0"
    assert _refused(checks.number, "x", math.inf, 0) == "x=inf: must be a finite number >= 0"
    assert _refused(checks.number, "x", math.nan) == "x=nan: must be a finite number"


def test_fraction():
    assert checks.fraction("p", 0) == 0 and checks.fraction("p", 0.999) == 0.999
    for bad in (1, 1.0, -0.1, False, "0.5", None):
        assert _refused(checks.fraction, "p", bad).startswith(f"p={checks.shown(bad)}: must be ")


def test_sizes():
    assert checks.sizes("h", [4, 1]) == [4, 1] and checks.sizes("h", (2,)) == [2]
    assert checks.sizes("h", ListConfig([8])) == [8]
    assert _refused(checks.sizes, "h", [], " (use x)") == "h=[]: must hold at least one size (use x)"
    assert _refused(checks.sizes, "h", [64, 0]) == "h[1]=0: must be >= 1"
    assert _refused(checks.sizes, "h", [True]) == "h[0]=True: must be an integer >= 1"
    assert _refused(checks.sizes, "h", 64) == "h=64: must be a list of integers >= 1"
    assert _refused(checks.sizes, "h", "64") == "h='64': must be a list of integers >= 1"


def test_seed():
    assert checks.seed("s", 0) == 0 and checks.seed("s", checks.SEED_MAX) == 2**32 - 1
    assert checks.seed("s", None, allow_null=True) is None
    assert _refused(checks.seed, "s", None) == "s=null: must be an integer (a fixed seed)"
    assert _refused(checks.seed, "s", -1) == "s=-1: must be an integer in [0, 4294967295]"
    assert _refused(checks.seed, "s", 2**32) == f"s={2**32}: must be an integer in [0, 4294967295]"
    assert _refused(checks.seed, "s", "abc", allow_null=True) == (
        "s='abc': must be an integer in [0, 4294967295] (or null: a random seed)")
    for bad in (True, 1.5):
        assert _refused(checks.seed, "s", bad).startswith(f"s={bad}: must be an integer in")


def test_choice():
    assert checks.choice("d", 2, (1, 2)) == 2
    assert _refused(checks.choice, "d", 3, (1, 2)) == "d=3: must be one of 1, 2"
    assert _refused(checks.choice, "d", True, (1, 2)) == "d=True: must be one of 1, 2"
    assert _refused(checks.choice, "a", "relu", ("clamp", "none")) == "a='relu': must be one of clamp, none"


# ------------------------------------------------------------------------------------------- networks
# Bad values of the networks' numeric settings, by parameter name.
SIZE = [0, 1.5, True, "8"]
BAD_NET_VALUES: dict[str, list[Any]] = {
    **{name: SIZE for name in ("in_features", "num_classes", "hidden_channels", "hidden_size", "num_layers", "heads",
                               "output_heads", "kernel_size", "input_size", "in_channels", "height", "width",
                               "convs_per_block")},
    "hidden_sizes": [[], [64, 0], [8, 1.5], 64],
    "channels": [[], [0, 8], [True]],
    "hidden": [-1, 1.5],
    "dropout": [1.0, -0.1, "abc", True],
    "alpha": [-0.1, 1.5],
    "self_loop_weight": [0.0, -1.0, "abc"],
    "theta": [-0.5],
    "K": [-1, 2.5],
    "conv_weight_decay": [-0.01, "abc"],
    "directions": [0, 3, True],
    "dense_below": [-1, 1.5],
}


def _net_config(path: Path) -> tuple[type[nn.Module], dict[str, Any]]:
    """The network class of a model config and its arguments, the data's facts filled in with :data:`FACTS`."""
    net = OmegaConf.to_container(OmegaConf.load(path).net)
    fact = re.compile(r"\$\{facts\.(\w+)\}")
    kwargs = {k: FACTS[fact.fullmatch(v).group(1)] if isinstance(v, str) and fact.fullmatch(v) else v
              for k, v in net.items() if k != "_target_"}
    return get_class(net["_target_"]), kwargs


def _is_numeric(value: Any) -> bool:
    return checks.is_number(value) or (isinstance(value, list) and all(map(checks.is_number, value)))


NET_CASES = [(path.stem, key, bad) for path in MODEL_CONFIGS for key in _net_config(path)[1]
             for bad in BAD_NET_VALUES.get(key, [])]


@pytest.mark.parametrize("path", MODEL_CONFIGS, ids=lambda p: p.stem)
def test_every_model_config_builds_its_net(path):
    cls, kwargs = _net_config(path)
    assert isinstance(cls(**kwargs), nn.Module)


@pytest.mark.parametrize("path", MODEL_CONFIGS, ids=lambda p: p.stem)
def test_every_numeric_net_key_has_bad_values(path):
    """A new numeric setting in a model config needs its bad values here (and its check in the constructor)."""
    _, kwargs = _net_config(path)
    numeric = [k for k, v in kwargs.items() if _is_numeric(v) or (v is None and k in BAD_NET_VALUES)]
    assert numeric and not [k for k in numeric if k not in BAD_NET_VALUES], path.stem


@pytest.mark.parametrize(("model", "key", "bad"), NET_CASES, ids=[f"{m}-{k}={b!r}" for m, k, b in NET_CASES])
def test_net_refuses_a_bad_value_naming_the_parameter(model, key, bad):
    cls, kwargs = _net_config(next(p for p in MODEL_CONFIGS if p.stem == model))
    with pytest.raises(ValueError) as err:
        cls(**{**kwargs, key: bad})
    msg = str(err.value)
    assert re.match(rf"(model\.net\.)?{re.escape(key)}(\[\d+\])?=", msg), msg
    assert ": must " in msg and "\n" not in msg, msg


@pytest.mark.parametrize(("model", "key", "good"), [
    ("cnn", "hidden", 0), ("mlp", "dropout", 0.0), ("mlp", "hidden_sizes", [1]), ("gcnii", "conv_weight_decay", None),
    ("gcnii", "conv_weight_decay", 0.0), ("gat", "output_heads", None), ("sgc", "K", 0), ("appnp", "alpha", 1.0),
    ("label_propagation", "alpha", 0.0), ("delineation_gcn", "dense_below", 0),
])
def test_net_takes_the_edges_of_its_ranges(model, key, good):
    cls, kwargs = _net_config(next(p for p in MODEL_CONFIGS if p.stem == model))
    cls(**{**kwargs, key: good})


def test_the_documented_messages():
    cls, kwargs = _net_config(next(p for p in MODEL_CONFIGS if p.stem == "mlp"))
    assert _refused(cls, **{**kwargs, "hidden_sizes": []}) == (
        "hidden_sizes=[]: must hold at least one size (a network without hidden layers is model=logreg)")
    assert _refused(cls, **{**kwargs, "hidden_sizes": [64, 0]}) == "hidden_sizes[1]=0: must be >= 1"
    assert _refused(cls, **{**kwargs, "dropout": 1.0}) == "dropout=1.0: must be in [0, 1)"
    cls, kwargs = _net_config(next(p for p in MODEL_CONFIGS if p.stem == "cnn"))
    assert _refused(cls, **{**kwargs, "hidden": -1}) == "hidden=-1: must be >= 0 (0: no hidden layer)"


# ------------------------------------------------------------------------------------------- tasks
def _task(cls: type = Classifier, optimizer: Any = None, **kwargs: Any) -> Any:
    net = DelineationGCN(3, 3) if cls is DelineationClassifier else nn.Linear(4, 3)
    return cls(net, optimizer or functools.partial(torch.optim.Adam, lr=0.01), 3, **kwargs)


OPTIMIZERS = [
    (dict(lr=-0.1), "optimizer.lr=-0.1: must be > 0"),
    (dict(lr=0), "optimizer.lr=0: must be > 0"),  # trains nothing
    (dict(lr="abc"), "optimizer.lr='abc': must be a number > 0"),
    (dict(lr=math.inf), "optimizer.lr=inf: must be a finite number > 0"),
    (dict(lr=0.1, weight_decay=-1e-4), "optimizer.weight_decay=-0.0001: must be >= 0"),
    (dict(lr=0.1, momentum=-0.5), "optimizer.momentum=-0.5: must be >= 0"),
]


@pytest.mark.parametrize("cls", [Classifier, NodeClassifier, DelineationClassifier])
@pytest.mark.parametrize(("keywords", "message"), OPTIMIZERS, ids=[m.split(":")[0] for _, m in OPTIMIZERS])
def test_task_refuses_bad_optimizer_settings(cls, keywords, message):
    optimizer = functools.partial(torch.optim.SGD, **keywords)
    assert _refused(_task, cls, optimizer) == message


def test_task_takes_good_settings_and_plain_factories():
    _task(optimizer=functools.partial(torch.optim.SGD, lr=1e-6, weight_decay=0.0, momentum=0.0))
    _task(optimizer=torch.optim.SGD)  # not a partial: nothing to read
    _task(label_smoothing=0.0, scheduler_interval="step")


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(label_smoothing=1.0), "label_smoothing=1.0: must be in [0, 1)"),
    (dict(scheduler_interval="batch"), "scheduler_interval='batch': must be one of epoch, step"),
    (dict(scheduler=functools.partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=0)),
     "scheduler.max_lr=0: must be > 0"),
])
def test_classifier_refuses_bad_settings(kwargs, message):
    assert _refused(_task, **kwargs) == message


def test_classifier_refuses_bad_num_classes():
    with pytest.raises(ValueError, match=r"^num_classes=0: must be >= 1$"):
        Classifier(nn.Linear(4, 3), functools.partial(torch.optim.Adam, lr=0.01), 0)


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(max_rounds=0), "max_rounds=0: must be >= 1"),
    (dict(epochs_per_round=0), "epochs_per_round=0: must be >= 1"),
    (dict(epochs_per_round=True), "epochs_per_round=True: must be an integer >= 1"),
    (dict(steps_per_epoch=1.5), "steps_per_epoch=1.5: must be an integer >= 1"),
    (dict(tol=math.nan), "tol=nan: must be a finite number"),
    (dict(loss_nodes="val"), "loss_nodes='val': must be one of train, all"),
    (dict(round_output="best"), "round_output='best': must be one of final, lowest_loss"),
])
def test_delineation_task_refuses_bad_settings(kwargs, message):
    assert _refused(_task, DelineationClassifier, **kwargs) == message


def test_delineation_task_takes_a_negative_tol_and_its_rounds_check_too():
    _task(DelineationClassifier, tol=-1.0)  # every round runs (tests use it)
    assert _refused(DelineationRounds, 1, 0) == "max_rounds=0: must be >= 1"
    assert _refused(DelineationRounds, 0, 1) == "epochs_per_round=0: must be >= 1"


# ------------------------------------------------------------------------------------------- data
VISION = [
    (dict(batch_size=0), "data.batch_size=0: must be >= 1"),
    (dict(batch_size=1.5), "data.batch_size=1.5: must be an integer >= 1"),
    (dict(batch_size=True), "data.batch_size=True: must be an integer >= 1"),
    (dict(eval_batch_size=-5), "data.eval_batch_size=-5: must be >= 1"),
    (dict(val_size=0), "data.val_size=0: must be >= 1"),
    (dict(split_seed=None), "data.split_seed=null: must be an integer (a fixed seed)"),
    (dict(split_seed=-1), "data.split_seed=-1: must be an integer in [0, 4294967295]"),
    (dict(split_seed="abc"), "data.split_seed='abc': must be an integer in [0, 4294967295]"),
    (dict(seed=2**32), "data.seed=4294967296: must be an integer in [0, 4294967295]"),
    (dict(seed=None), "data.seed=null: must be an integer (a fixed seed)"),
]


@pytest.mark.parametrize(("kwargs", "message"), VISION, ids=[m.split(":")[0] for _, m in VISION])
def test_vision_data_refuses_bad_settings(tmp_path, kwargs, message):
    assert _refused(MNISTDataModule, tmp_path, download=False, **kwargs) == message


def test_vision_data_takes_the_edges_of_its_ranges(tmp_path):
    MNISTDataModule(tmp_path, download=False, batch_size=1, eval_batch_size=1, val_size=1, split_seed=0,
                    seed=2**32 - 1)


GRAPH = [
    (dict(train_frac=1.5), "train_frac=1.5: must be in (0, 1)"),
    (dict(train_frac=0), "train_frac=0: must be in (0, 1)"),
    (dict(train_frac=1.0, val_frac=0.0), "train_frac=1.0: must be in (0, 1)"),
    (dict(val_frac=-0.1), "val_frac=-0.1: must be in [0, 1)"),
    (dict(val_frac=1), "val_frac=1: must be in [0, 1)"),
    (dict(train_frac="0.6"), "train_frac='0.6': must be a number in (0, 1)"),
    (dict(train_frac=0.7, val_frac=0.3), "train_frac=0.7: must be < 1 - val_frac = 0.7 (val_frac=0.3; the rest is"),
    (dict(seed=None), "seed=null: must be an integer (a fixed seed)"),
    (dict(seed=True), "seed=True: must be an integer in [0, 4294967295]"),
]


@pytest.mark.parametrize(("kwargs", "message"), GRAPH, ids=[m.split(":")[0] for _, m in GRAPH])
def test_graph_split_refuses_bad_settings(kwargs, message):
    """The split's own keys (``data.split.*``; the run layer puts ``data.split.`` in front)."""
    assert _refused(RandomSplit, **kwargs).startswith(message)


@pytest.mark.parametrize("split", [PublicSplit, KFoldSplit, PerClassSplit])
@pytest.mark.parametrize(("kwargs", "message"), GRAPH[-2:], ids=[m.split(":")[0] for _, m in GRAPH[-2:]])
def test_every_graph_split_refuses_a_bad_seed(split, kwargs, message):
    assert _refused(split, **kwargs) == message


@pytest.mark.parametrize("cls", [NYCZipDataModule, CoraDataModule])
def test_graph_data_refuses_what_is_no_split(tmp_path, cls):
    assert _refused(cls, tmp_path, download=False, split=0.6).startswith("split=0.6: must be a node split, chosen as "
                                                                         "data/split=")


def test_graph_data_takes_the_edges_of_its_ranges(tmp_path):
    NYCZipDataModule(tmp_path, download=False, split=RandomSplit(train_frac=0.999, val_frac=0.0, seed=2**32 - 1))
    CoraDataModule(tmp_path, download=False, split=RandomSplit(train_frac=0.5, val_frac=0.49, seed=0))


def test_tensor_loader_refuses_a_bad_batch_size():
    x = y = torch.arange(4)
    for bad in (0, True, 2.0):
        with pytest.raises(ValueError, match=r"^batch_size="):
            TensorBatchLoader(x, y, bad)
