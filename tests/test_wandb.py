"""W&B logging offline with no account (zoo/loggers.py); the W&B sweep file."""

import itertools

import pytest
import yaml

from tests.runs import TINY
from zoo.loggers import wandb_logger
from zoo.registry import CONFIG_DIR
from zoo.run.runner import train

wandb = pytest.importorskip("wandb")


@pytest.fixture
def wandb_env(tmp_path, monkeypatch):
    """No credentials, no network, nothing written outside tmp_path."""
    for key in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_PROJECT", "WANDB_ENTITY", "SLURM_JOB_ID"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.netrc login
    for key in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(key, str(tmp_path / "wandb_home"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    yield
    wandb.finish()


def test_wandb_is_offline_without_login(wandb_env, monkeypatch, tmp_path):
    assert wandb_logger(save_dir=str(tmp_path))._wandb_init["mode"] == "offline"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_logger(save_dir=str(tmp_path))._wandb_init["mode"] == "disabled"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.delenv("WANDB_MODE")
    assert wandb_logger(save_dir=str(tmp_path))._wandb_init["mode"] == "online"
    monkeypatch.setenv("SLURM_JOB_ID", "41")  # a compute node: offline even when logged in
    assert wandb_logger(save_dir=str(tmp_path))._wandb_init["mode"] == "offline"


def test_a_sweeps_jobs_form_one_wandb_group(wandb_env, make_cfg, tmp_path):
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import open_dict, read_write

    cfg = make_cfg("logger=wandb")
    assert wandb_logger(save_dir=str(tmp_path), group="mnist")._wandb_init["group"] == "mnist"  # a single run
    with read_write(cfg.hydra), open_dict(cfg.hydra):
        cfg.hydra.mode, cfg.hydra.sweep.dir = RunMode.MULTIRUN, str(tmp_path / "2026-12-04_10-00-00")
    before = HydraConfig.instance().cfg
    HydraConfig.instance().set_config(cfg)
    try:
        assert wandb_logger(save_dir=str(tmp_path), group="mnist")._wandb_init["group"] == "2026-12-04_10-00-00"
    finally:
        HydraConfig.instance().cfg = before  # other tests in this process run single runs


def test_resumed_run_keeps_its_wandb_run_id(wandb_env, tmp_path):
    first = wandb_logger(save_dir=str(tmp_path))._wandb_init
    again = wandb_logger(save_dir=str(tmp_path))._wandb_init  # the same run directory, e.g. ckpt_path=last
    other = wandb_logger(save_dir=str(tmp_path / "other"))._wandb_init
    assert first["id"] == again["id"] != other["id"] and first["resume"] == "allow"
    assert (tmp_path / "wandb_run_id.txt").read_text().strip() == first["id"]


def test_wandb_offline_run_writes_its_files(wandb_env, make_cfg, tmp_path):
    cfg = make_cfg("logger=wandb", "model=logreg", "data=mnist", "seed=7", *TINY)
    metrics, objects = train(cfg)
    run = objects["loggers"][0].experiment
    assert (run.name, run.group, list(run.tags)) == ("logreg-mnist-7", "mnist", ["logreg"])
    assert run.config["model_name"] == "logreg" and run.config["params"] == metrics["params"]
    assert run.summary["test/acc"] == pytest.approx(metrics["test/acc"])
    assert "test/confusion_matrix" in set(run.summary.keys())
    wandb.finish()
    # The .wandb file is written by W&B's service process, which may still hold the last records in its buffer
    # after finish() (a read once found only the 7-byte header): teardown() waits for the service to shut down.
    wandb.teardown()
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")  # `wandb sync` uploads it later
    (records,) = run_dir.glob("run-*.wandb")  # config, history and summary, for `wandb sync`
    assert b"logreg-mnist-7" in records.read_bytes() and b"zoo.nets.logreg.LogisticRegression" in records.read_bytes()
    assert list((run_dir / "files" / "media" / "images" / "test").glob("confusion_matrix*.png"))
    assert list((run_dir / "files" / "media" / "images").glob("training_curves*.png"))


def test_wandb_sweep_file_drives_train_py(make_cfg):
    sweep = yaml.safe_load((CONFIG_DIR / "wandb_sweep.yaml").read_text())
    assert sweep["program"] == "train.py" and "${args_no_hyphens}" in sweep["command"]
    assert "logger=wandb" in sweep["command"]
    params = sweep["parameters"]
    assert list(params)[:2] == ["model", "data"]
    # Every model x data pair, with the other parameters, is a valid set of train.py overrides.
    others = [f"{k}={p['values'][0]}" for k, p in list(params.items())[2:]]
    for model, data in itertools.product(params["model"]["values"], params["data"]["values"]):
        cfg = make_cfg(f"model={model}", f"data={data}", *others)
        assert (cfg.model_name, cfg.data_name) == (model, data)
