"""Planetoid Cora (datamodules/cora.py) read from fake ``ind.cora.*`` files, whole or its largest connected
component, and the two Cora protocols (``compare=cora``, ``compare=cora_public``)."""

import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import yaml

from datamodules.cora import CoraDataModule
from datamodules.splits import PerClassSplit
from tests.conftest import compose_cfg
from tests.graph_fakes import write_fake_cora
from zoo.errors import ConfigError, DataNotFoundError
from zoo.run.facts import load_data

CONFIGS = Path(__file__).parents[1] / "configs"
CORA_MODELS = ("gcn", "gat", "graphsage", "gin", "appnp", "sgc", "gcnii", "mlp", "logreg", "label_propagation")


def test_cora_fake_loads_with_public_split(data_dir):
    data = CoraDataModule(data_dir, download=False).load()
    assert data.num_node_features == 1433 and int(data.y.max()) + 1 == 7
    assert int(data.train_mask.sum()) == 14 and int(data.val_mask.sum()) == 500 and int(data.test_mask.sum()) == 30
    torch.testing.assert_close(data.x.sum(1), torch.ones(data.num_nodes))  # NormalizeFeatures


def test_missing_cora_files_name_folder_and_fix(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"ind\.cora\.x.*data_dir"):
        CoraDataModule(tmp_path, download=False).load()


def test_cora_files_that_cannot_be_processed_are_not_called_missing(tmp_path, monkeypatch):
    """The raw files are there but PyG's processing fails: the message says so, not "Cora files not found"."""
    import datamodules.cora as cora

    write_fake_cora(tmp_path)

    def broken(_open):
        raise RuntimeError("a fault in processing")

    monkeypatch.setattr(cora, "open_cache", broken)
    with pytest.raises(DataNotFoundError, match=r"could not be processed \(RuntimeError: a fault") as err:
        CoraDataModule(tmp_path, download=False).load()
    assert "not found" not in str(err.value)


@pytest.fixture
def split_cora(tmp_path) -> Path:
    """Fake Cora files whose graph falls apart: nodes 0-39 form a ring of their own, 40-41 a pair, the rest a
    random graph; the first 14 nodes (in the ring) are public training nodes."""
    raw = write_fake_cora(tmp_path)
    with (raw / "ind.cora.graph").open("rb") as f:
        graph = pickle.load(f)
    n, rng = len(graph), np.random.default_rng(1)
    rest = np.arange(42, n)
    new = {i: [] for i in range(n)}
    for i in range(40):
        new[i].append((i + 1) % 40)
    new[40].append(41)
    for i in rest:
        new[int(i)] += [int(j) for j in rng.choice(rest, size=3, replace=False) if j != i]
    with (raw / "ind.cora.graph").open("wb") as f:
        pickle.dump(new, f, protocol=2)
    return tmp_path


def _components(data) -> np.ndarray:
    adj = sp.coo_matrix((np.ones(data.edge_index.size(1)), data.edge_index.numpy()), (data.num_nodes,) * 2)
    return sp.csgraph.connected_components(adj, directed=True, connection="weak")[1]


def test_lcc_keeps_the_largest_component_and_cuts_the_public_masks(split_cora):
    whole = CoraDataModule(split_cora, download=False).load()
    lcc = CoraDataModule(split_cora, download=False, lcc=True).load()
    component = _components(whole)
    largest = component == np.bincount(component).argmax()
    assert len(np.unique(component)) >= 3 and lcc.num_nodes == int(largest.sum()) < whole.num_nodes
    keep = torch.from_numpy(largest)
    assert torch.equal(lcc.y, whole.y[keep]) and torch.equal(lcc.x, whole.x[keep])
    for name in ("train_mask", "val_mask", "test_mask"):
        assert torch.equal(lcc[name], whole[name][keep])
    assert int(lcc.train_mask.sum()) == 0  # the public training nodes were all in the small ring
    assert len(np.unique(_components(lcc))) == 1
    assert lcc.num_edges == int(largest[whole.edge_index[0].numpy()].sum())


def test_lcc_and_the_whole_graph_never_read_each_others_cache(split_cora):
    sizes = [CoraDataModule(split_cora, download=False, lcc=lcc).load().num_nodes
             for lcc in (False, True, False, True)]
    assert sizes[0] == sizes[2] and sizes[1] == sizes[3] and sizes[1] < sizes[0]
    cached = list((split_cora / "Cora" / "processed").glob("data_*.pt"))
    assert len(cached) == 1  # the cache holds the whole graph; the component is taken after it


def test_lcc_per_class_split_takes_its_nodes_from_the_component(split_cora):
    whole = CoraDataModule(split_cora, download=False).load()
    data = CoraDataModule(split_cora, download=False, lcc=True, split=PerClassSplit(seed=3)).load()
    assert data.num_nodes < whole.num_nodes
    assert torch.bincount(data.y[data.train_mask]).tolist() == [20] * 7
    assert torch.bincount(data.y[data.val_mask]).tolist() == [30] * 7
    assert int(data.test_mask.sum()) == data.num_nodes - 50 * 7


def test_lcc_must_be_a_boolean(data_dir):
    with pytest.raises(ConfigError, match=r"data\.lcc='yes'"):
        CoraDataModule(data_dir, download=False, lcc="yes")


def test_lcc_from_the_config_gives_the_facts_of_the_component(split_cora):
    def load(*overrides: str) -> CoraDataModule:
        return load_data(compose_cfg(["model=gcn", "data=cora", "data.download=false", *overrides],
                                     split_cora / "out", split_cora))

    whole, lcc = load(), load("data.lcc=true")
    assert lcc.lcc and not whole.lcc
    lcc.setup("fit")
    whole.setup("fit")
    assert lcc.data.num_nodes < whole.data.num_nodes
    assert lcc.facts()["num_features"] == whole.facts()["num_features"] == 1433


# ------------------------------------------------------------------------------------------- the two protocols
def _compare(name: str) -> dict:
    return yaml.safe_load((CONFIGS / "compare" / f"{name}.yaml").read_text())


def test_compare_cora_is_shchur_et_al():
    """LCC, 20 training and 30 validation nodes per class (per_class's defaults), at least 10 splits, one
    stopping rule (validation loss, patience 50) for every model; every Cora model in it."""
    cora, public = _compare("cora"), _compare("cora_public")
    assert cora["defaults"] == ["cora_public", {"override /data/split": "per_class"}] and cora["data"]["lcc"] is True
    params = cora["hydra"]["sweeper"]["params"]
    assert "data/split" not in params and params["seed"] == "range(0,10)"
    data = yaml.safe_load((CONFIGS / "data" / "cora.yaml").read_text())
    assert {"split": "public"} in data["defaults"]  # the public split stays Cora's default
    per_class = yaml.safe_load((CONFIGS / "data" / "split" / "per_class.yaml").read_text())
    assert per_class["train_per_class"] == 20 and per_class["val_per_class"] == 30
    stop = cora["callbacks"]["early_stopping"]
    assert (stop["monitor"], stop["mode"], stop["patience"]) == ("val/loss", "min", 50)
    experiments = public["hydra"]["sweeper"]["params"]["experiment"].split(",")
    assert sorted(experiments) == sorted(f"{m}_cora" for m in CORA_MODELS)
    assert all((CONFIGS / "experiment" / f"{e}.yaml").is_file() for e in experiments)


def test_compare_cora_public_is_the_planetoid_split_on_the_whole_graph():
    public = _compare("cora_public")
    assert public["data"]["lcc"] is False and {"override /data/split": "public"} in public["defaults"]
    assert "early_stopping" not in public.get("callbacks", {})  # each model stops as its paper does
    grid = public["hydra"]["sweeper"]["grid"]["experiment=label_propagation_cora"]
    assert "symmetric" in grid["model.net.normalization"].split(",") and "0.99" in str(grid["model.net.alpha"])


@pytest.mark.parametrize(("compare", "lcc", "split", "patience"), [("cora", True, "per_class", 50),
                                                                    ("cora_public", False, "public", 100)])
def test_each_protocol_sets_its_graph_split_and_stopping_rule_over_the_experiment(tmp_path, data_dir, compare, lcc,
                                                                                  split, patience):
    """GCNII's experiment stops after 100 epochs without a better validation loss (its paper); Shchur et al.'s
    protocol replaces that by its one rule (50) for every model, the public protocol keeps it."""
    cfg = compose_cfg(["experiment=gcnii_cora", f"compare={compare}"], tmp_path, data_dir)
    assert cfg.data.lcc is lcc and cfg.hydra.runtime.choices["data/split"] == split
    assert cfg.data.split._target_ == f"datamodules.splits.{'PerClassSplit' if split == 'per_class' else 'PublicSplit'}"
    assert cfg.callbacks.early_stopping.patience == patience and cfg.callbacks.early_stopping.monitor == "val/loss"
    assert cfg.trainer.max_epochs == 1000 and cfg.model.net.num_layers == 64  # the experiment's own settings
