"""Every file in configs/ composes, and the parts a run builds from it instantiate."""

import re
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from tests.conftest import PAIRS
from zoo.registry import CONFIG_DIR, data_kind, model_kinds, names
from zoo.run.facts import load_data

# (group, name) for every config file of every group, e.g. ("model", "mlp"), ("hydra/launcher", "slurm").
OPTIONS = sorted(
    (str(p.parent.relative_to(CONFIG_DIR)), p.stem)
    for p in CONFIG_DIR.rglob("*.yaml")
    if p.parent != CONFIG_DIR and p.relative_to(CONFIG_DIR) != Path("hydra/default.yaml")
)


def _default_groups(group: str, name: str) -> set[str]:
    """Config groups that the defaults list of ``configs/<group>/<name>.yaml`` selects (e.g. ``{"scheduler"}``)."""
    defaults = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / group / f"{name}.yaml")).get("defaults") or []
    return {k for d in defaults if isinstance(d, dict) for k in d}


def _overrides(group: str, name: str) -> list[str]:
    """The overrides that select this option together with parts it fits."""
    parent, _, sub = group.partition("/")
    if parent in ("model", "data") and sub:
        # A sub-group (model/scheduler, data/trainer): under a parent config that selects it, else appended.
        owner = next((n for n in names(parent) if sub in _default_groups(parent, n)), None)
        return [*_overrides(parent, owner), f"{group}={name}"] if owner else [f"+{group}={name}"]
    if group == "model":
        return [f"model={name}", f"data={next(d for m, d in PAIRS if m == name)}"]
    if group == "data":
        return [f"data={name}", f"model={next(m for m, d in PAIRS if d == name)}"]
    return [f"{group}={name}"]


@pytest.mark.parametrize(("group", "name"), OPTIONS, ids=[f"{g}/{n}" for g, n in OPTIONS])
def test_config_composes_and_instantiates(make_cfg, group, name):
    cfg = make_cfg(*_overrides(group, name))
    assert cfg.model_name and cfg.data_name
    if group.startswith("hydra") or group == "hparams_search":
        return  # launchers and sweepers are built by Hydra itself (see test_sweeps.py)
    if group == "trainer":
        # make_cfg forces accelerator=cpu: a GPU preset (e.g. ddp: devices=-1 = every GPU) is checked as written.
        own = OmegaConf.load(CONFIG_DIR / group / f"{name}.yaml").get("accelerator")
        if own in ("gpu", "cuda"):
            if not torch.cuda.is_available():
                pytest.skip(f"trainer={name} needs a GPU (accelerator={own})")
            cfg.trainer.accelerator = own
        assert instantiate(cfg.trainer).max_epochs == cfg.trainer.max_epochs
        return
    assert data_kind(cfg.data_name) in model_kinds(cfg.model_name)
    datamodule = load_data(cfg)
    model = instantiate(cfg.model)
    assert datamodule is not None and sum(p.numel() for p in model.parameters()) > 0
    for section in ("callbacks", "logger"):
        for node in (cfg.get(section) or {}).values():
            if node and "_target_" in node and "Wandb" not in node._target_:
                assert instantiate(node) is not None


def test_every_model_config_has_a_network_file():
    for path in (CONFIG_DIR / "model").glob("*.yaml"):
        assert (Path(__file__).parents[1] / "zoo" / "nets" / f"{path.stem}.py").is_file(), path.stem


@pytest.mark.parametrize("data", sorted({d for _, d in PAIRS}))
def test_dataset_facts_come_from_the_data(make_cfg, data):
    cfg = make_cfg("model=mlp", f"data={data}")
    datamodule = load_data(cfg)
    net = instantiate(cfg.model).net
    batch = next(iter(datamodule.train_dataloader()))
    x = batch.x if hasattr(batch, "x") else batch[0]
    assert net.layers[0].in_features == x[0].numel() == cfg.facts.num_features
    assert net.layers[-1].out_features == len(datamodule.class_names) == cfg.facts.num_classes


def test_a_data_option_that_changes_the_width_reaches_the_model(make_cfg):
    cfg = make_cfg("model=gcn", "data=nyc_zip", "data.include_prior=true")
    load_data(cfg)
    assert cfg.facts.num_features == 10 and instantiate(cfg.model).net.gnn.convs[0].in_channels == 10


def test_trainer_defaults_come_from_data_then_model_and_explicit_settings_win(make_cfg):
    short = OmegaConf.load(CONFIG_DIR / "trainer" / "default.yaml").max_epochs
    full_batch = OmegaConf.load(CONFIG_DIR / "data" / "trainer" / "full_batch.yaml")
    assert make_cfg("model=mlp", "data=mnist").trainer.max_epochs == short != full_batch.max_epochs
    for data in ("cora", "nyc_zip"):
        trainer = make_cfg("model=gcn", f"data={data}").trainer
        assert (trainer.max_epochs, trainer.log_every_n_steps) == (full_batch.max_epochs, 1)
    # A model's trainer defaults come after the data's; an experiment and the command line come after both.
    assert make_cfg("model=gcn", "data=cora", "+model/trainer=rounds").trainer.max_epochs == -1
    assert make_cfg("experiment=gcn_nyc_zip").trainer.log_every_n_steps == 10
    assert make_cfg("model=gcn", "data=cora", "trainer.max_epochs=7").trainer.max_epochs == 7
    assert make_cfg("model=gcn", "data=cora", "trainer=ddp_cpu").trainer.max_epochs == full_batch.max_epochs


# Hydra refuses `data.num_classes=20` on the command line (no such key); `+key=...` or a key in an experiment file
# reaches the run, which refuses it by the signature of the class the section builds.
@pytest.mark.parametrize("override", ["+data.num_classes=20", "+data.batchsize=64", "+model.net.hiden_sizes=[8]",
                                      "+facts.num_classes=3"])
def test_mistyped_or_hand_typed_keys_are_errors(make_cfg, override):
    from zoo.errors import ConfigError
    from zoo.run.runner import train

    with pytest.raises(ConfigError, match=re.escape(override.split("=")[0].lstrip("+"))):
        train(make_cfg("model=mlp", "data=mnist", override))


def test_early_stopping_is_an_opt_in_preset(make_cfg):
    assert "early_stopping" not in make_cfg().callbacks
    stop = instantiate(make_cfg("callbacks=early_stopping", "callbacks.early_stopping.patience=2").callbacks.early_stopping)
    assert (stop.monitor, stop.mode, stop.patience) == ("val/acc", "max", 2)
    assert set(make_cfg("callbacks=early_stopping").callbacks) > set(make_cfg().callbacks)  # the defaults, plus it
