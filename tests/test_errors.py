"""Bad input gets one clear error before training starts, and the user's files are left as they were."""

import hashlib
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torchvision.datasets.utils as tv_utils
from hydra.errors import MissingConfigException
from hydra.utils import get_class, instantiate
from torchvision.datasets import MNIST

from tests.conftest import BAD_PAIRS, PAIRS, compose_cfg
from tests.fakes import write_idx_dataset
from zoo.callbacks.finite_loss import FiniteLossCheck
from zoo.errors import ConfigError, DataNotFoundError, NonFiniteLossError
from zoo.registry import CONFIG_DIR, names
from zoo.run.plan import make_plan
from zoo.run.runner import train

ROOT = CONFIG_DIR.parent
# One short epoch: enough to write checkpoints, fast on CPU.
FAST = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
        "trainer.enable_model_summary=false", "logger=none"]


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------- names
def _available(out: str, group: str) -> list[str]:
    return out.split(f"Available options in '{group}':")[1].split("Config search path")[0].split()


def test_unknown_name_in_real_run_lists_the_available_ones(tmp_path):
    """A real ``python train.py model=nope`` exits 2 with one line that names the group and lists every model."""
    proc = subprocess.run([sys.executable, "train.py", "model=nope", f"hydra.run.dir={tmp_path}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ConfigError: model=nope: there is no such option"), lines
    assert lines[0].split("options: ")[1].rstrip(")").split(", ") == names("model")
    assert not tmp_path.exists() or not any(tmp_path.iterdir())  # refused before Hydra wrote anything


def test_bad_input_in_real_run_is_one_message_without_traceback(tmp_path, data_dir):
    """``python train.py model=gcn data=mnist``: the sentence naming what fits, exit code 2, nothing written."""
    proc = subprocess.run([sys.executable, "train.py", "model=gcn", "data=mnist", f"paths.data_dir={data_dir}",
                           f"hydra.run.dir={tmp_path}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "ConfigError: model=gcn works on graph data, but data=mnist is image data: use model=gcn with " in (
        proc.stdout + proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "metrics.json").exists()


@pytest.mark.parametrize("group", ["model", "data", "experiment"])
def test_unknown_names_list_the_available_ones(tmp_path, data_dir, group):
    """Hydra's own message (the one ``train.py`` prints) lists the configs of the group."""
    with pytest.raises(MissingConfigException) as err:
        compose_cfg([f"{group}=nope"], tmp_path, data_dir)
    assert f"Could not find '{group}/nope'" in str(err.value)
    assert _available(str(err.value) + "Config search path", group) == names(group)


def test_the_issue_examples_are_incompatible_pairs():
    """Keeps the next test's parameter list from ever being empty (the zoo has image-only and graph-only nets)."""
    assert {("gcn", "mnist"), ("cnn", "cora")} <= set(BAD_PAIRS)


@pytest.mark.parametrize(("model", "data"), BAD_PAIRS, ids=[f"{m}-{d}" for m, d in BAD_PAIRS])
def test_incompatible_pair_names_what_fits(make_cfg, tmp_path, model, data):
    cfg = make_cfg(f"model={model}", f"data={data}")
    with pytest.raises(ConfigError) as err:
        train(cfg)
    msg = str(err.value)
    fitting_data = [d for m, d in PAIRS if m == model]
    fitting_models = [m for m, d in PAIRS if d == data]
    assert "\n" not in msg
    assert f"use model={model} with data={'|'.join(fitting_data)}" in msg
    assert f"or data={data} with model={'|'.join(fitting_models)}" in msg
    assert not (tmp_path / "checkpoints").exists()


# ----------------------------------------------------------------------------------- hyperparameters
BAD_HPARAMS = [
    (["model.optimizer.lr=-0.1"], "model.optimizer.lr=-0.1: must be > 0"),
    (["model.optimizer.lr=0"], "model.optimizer.lr=0: must be > 0"),
    (["model.optimizer.lr=abc"], "model.optimizer.lr='abc': must be a number"),
    (["model.optimizer.weight_decay=-1e-4"], "model.optimizer.weight_decay=-0.0001: must be >= 0"),
    (["model=mlp", "model.net.hidden_sizes=[64,0]"], "model.net.hidden_sizes[1]=0: must be >= 1"),
    (["model=mlp", "model.net.dropout=1.0"], "model.net.dropout=1.0: must be in [0, 1)"),
    (["model=mlp", "model.net.dropout=-0.1"], "model.net.dropout=-0.1: must be in [0, 1)"),
    (["model=rnn", "model.net.hidden_size=0"], "model.net.hidden_size=0: must be >= 1"),
    (["model=rnn", "model.net.num_layers=0"], "model.net.num_layers=0: must be >= 1"),
    (["model=cnn", "model.net.channels=[0,8]"], "model.net.channels[0]=0: must be >= 1"),
    (["model=cnn", "model.net.hidden=-1"], "model.net.hidden=-1: must be >= 0 (0: no hidden layer)"),
    (["model=mlp", "model.net.dropout=true"], "model.net.dropout=True: must be a number in [0, 1)"),
    (["data.batch_size=0"], "data.batch_size=0: must be >= 1"),
    (["data.batch_size=1.5"], "data.batch_size=1.5: must be an integer >= 1"),
    (["data.eval_batch_size=-5"], "data.eval_batch_size=-5: must be >= 1"),
    (["trainer.max_epochs=0"], "trainer.max_epochs=0: must be >= 1"),
    (["model=gcnii", "data=cora", "model.net.conv_weight_decay=-0.01"],
     "model.net.conv_weight_decay=-0.01: must be >= 0"),
    (["model=gat", "data=cora", "model.net.heads=0"], "model.net.heads=0: must be >= 1"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_HPARAMS, ids=[" ".join(o) for o, _ in BAD_HPARAMS])
def test_invalid_hyperparameter_is_refused_with_its_key(make_cfg, tmp_path, overrides, message):
    cfg = make_cfg(*overrides)
    with pytest.raises(ConfigError) as err:
        train(cfg)
    assert message in str(err.value)
    assert not (tmp_path / "checkpoints").exists()


SHIPPED = [[f"model={m}", f"data={d}"] for m, d in PAIRS] + [[f"experiment={e}"] for e in names("experiment")] + [
    ["model=cnn", "model.net.hidden=0"]]  # CNN's documented "no hidden layer"


@pytest.mark.parametrize("overrides", SHIPPED, ids=" ".join)
def test_every_shipped_config_passes_the_constructor_checks(make_cfg, overrides):
    """The constructors' checks refuse none of the zoo's own configs: the DataModule (built by ``make_plan``, which
    fills ``cfg.facts``), then the task with its network."""
    cfg = make_cfg(*overrides)
    datamodule = make_plan(cfg).datamodule
    assert isinstance(datamodule, get_class(cfg.data._target_))
    task = instantiate(cfg.model)
    assert isinstance(task.net, get_class(cfg.model.net._target_))


# ------------------------------------------------------------------------------------------- data
def _vision_cfg(tmp_path: Path, data_dir: Path, *overrides: str):
    return compose_cfg(["trainer.accelerator=cpu", "model=logreg", "data=mnist", *FAST, *overrides],
                       tmp_path / "run", data_dir)


def test_missing_data_offline_without_download(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataNotFoundError, match=r"MNIST files not found in .*empty/MNIST/raw.*data.download=false"):
        train(_vision_cfg(tmp_path, empty, "data.download=false"))
    assert list(empty.iterdir()) == []


def test_missing_data_offline_download_fails_clearly(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataNotFoundError, match=r"(?s)MNIST files not found .* The download failed: .*no network"):
        train(_vision_cfg(tmp_path, tmp_path / "data"))


def test_truncated_idx_file_is_reported_and_kept(tmp_path):
    raw = write_idx_dataset(tmp_path / "data", "MNIST")
    images = raw / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[: images.stat().st_size // 2])
    before = _snapshot(raw)
    with pytest.raises(DataNotFoundError, match=r"MNIST/raw/train-images-idx3-ubyte holds .* bytes but .* truncated"):
        train(_vision_cfg(tmp_path, tmp_path / "data"))
    assert _snapshot(raw) == before


def test_archive_with_wrong_checksum_is_left_byte_identical(tmp_path):
    raw = write_idx_dataset(tmp_path / "data", "MNIST", compress=True)
    archive = raw / "train-images-idx3-ubyte.gz"
    archive.write_bytes(archive.read_bytes()[:-100])  # truncated download
    before = _snapshot(raw)
    with pytest.raises(DataNotFoundError, match=r"train-images-idx3-ubyte.gz is corrupt or truncated .*untouched"):
        train(_vision_cfg(tmp_path, tmp_path / "data"))
    assert _snapshot(raw) == before


def test_read_only_data_folder(tmp_path, monkeypatch):
    """Right archives, but the folder cannot hold the decompressed files."""
    raw = write_idx_dataset(tmp_path / "data", "MNIST", compress=True)
    resources = [(name, hashlib.md5((raw / name).read_bytes()).hexdigest())
                 for name in (Path(u).name for u, _ in MNIST.resources)]
    monkeypatch.setattr(MNIST, "resources", resources)  # our fake archives pass the md5 check
    before = _snapshot(raw)
    raw.chmod(0o555)
    if os.access(raw, os.W_OK):  # root ignores permissions: refuse writes into the folder instead
        real_open = open

        def read_only_open(file, mode="r", *args, **kwargs):
            if "w" in mode and Path(file).parent == raw:
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, mode, *args, **kwargs)

        monkeypatch.setattr(tv_utils, "open", read_only_open, raising=False)
    try:
        with pytest.raises(DataNotFoundError, match=r"Cannot write the decompressed files into .*read-only"):
            train(_vision_cfg(tmp_path, tmp_path / "data"))
    finally:
        raw.chmod(0o755)
    assert _snapshot(raw) == before


CSV_FLOWS = "w_zip,h_zip,total,initialFeat,true_label\n10001,10001,5,1,1\n10002,10001,3,1,1\n"
BAD_CSVS = [
    (CSV_FLOWS.replace(",true_label", ",label"), r"zips_merged.csv: column 'true_label' is missing"),
    (CSV_FLOWS.replace("10002,10001,3", "10002,10001,three"),
     r"zips_merged.csv: column 'total' holds non-numeric values \(first at data row 2: 'three'\)"),
]


@pytest.mark.parametrize(("text", "message"), BAD_CSVS, ids=["missing-column", "non-numeric"])
def test_csv_with_missing_column_or_non_numeric_value_names_the_file(tmp_path, text, message):
    """The graph data's CSV reader (its real loading code) on a broken commuting-flows file."""
    from datamodules.nyc_zip_dataset import read_flows

    (tmp_path / "zips_merged.csv").write_text(text)
    before = _snapshot(tmp_path)
    with pytest.raises(DataNotFoundError, match=message):
        read_flows(tmp_path)
    assert _snapshot(tmp_path) == before


# ------------------------------------------------------------------------------------- NaN loss
def test_nan_loss_stops_with_clear_error_and_keeps_last_good_checkpoint(make_cfg, tmp_path):
    # 4 training steps per epoch: epoch 0 is clean, the loss turns NaN at the 3rd step of epoch 1.
    cfg = make_cfg("model=logreg", "+model.net.nan_from_step=6", "model.net._target_=tests.faults.NaNAfterSteps",
                   "trainer.max_epochs=3", "trainer.limit_val_batches=1", "trainer.enable_model_summary=false")
    with pytest.raises(NonFiniteLossError) as err:
        train(cfg)
    msg = str(err.value)
    assert "NaN or infinite at epoch 1, global step 6" in msg
    assert "smaller learning rate (now 0.1), gradient clipping" in msg
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert str(last) in msg
    ckpt = torch.load(last, weights_only=True)
    assert ckpt["epoch"] == 0 and ckpt["global_step"] == 4
    assert all(torch.isfinite(w).all() for w in ckpt["state_dict"].values())
    assert not (tmp_path / "metrics.json").exists()


@pytest.mark.parametrize(("every_n_steps", "device", "expected"), [
    (None, "cpu", 1), (None, "cuda", FiniteLossCheck.ACCELERATOR_EVERY_N_STEPS), (5, "cpu", 5), (1, "cuda", 1),
])
def test_nan_check_reads_the_device_every_step_only_where_that_is_free(every_n_steps, device, expected):
    check = FiniteLossCheck(every_n_steps)
    trainer = SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device(device)))
    check.setup(trainer, None, "fit")
    assert check._every == expected


# ------------------------------------------------------------------------------------- checkpoints
@pytest.fixture(scope="module")
def logreg_ckpt(tmp_path_factory, data_dir) -> Path:
    run = tmp_path_factory.mktemp("logreg_run")
    train(compose_cfg(["trainer.accelerator=cpu", "model=logreg", "data=mnist", "data.val_size=100", *FAST],
                      run, data_dir))
    return run / "checkpoints" / "last.ckpt"


def test_ckpt_path_pointing_nowhere(make_cfg, tmp_path):
    with pytest.raises(ConfigError, match=r"ckpt_path=.*nope.ckpt does not exist"):
        train(make_cfg("model=logreg", f"ckpt_path={tmp_path / 'nope.ckpt'}"))
    with pytest.raises(ConfigError, match=r"ckpt_path=last does not exist .* hydra.run.dir="):
        train(make_cfg("model=logreg", "ckpt_path=last"))
    with pytest.raises(ConfigError, match=r"train=false tests a trained model: give ckpt_path="):
        train(make_cfg("model=logreg", "train=false"))


def test_fresh_run_never_overwrites_the_checkpoints_of_an_earlier_run(make_cfg, tmp_path):
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    (checkpoints / "last.ckpt").write_bytes(b"an earlier run's checkpoint")
    before = _snapshot(tmp_path)
    with pytest.raises(ConfigError, match=r"checkpoints already holds the checkpoints of an earlier run .*ckpt_path=last"):
        train(make_cfg("model=logreg"))
    assert _snapshot(tmp_path) == before


def test_checkpoint_of_another_model_is_refused(make_cfg, logreg_ckpt):
    with pytest.raises(ConfigError) as err:
        train(make_cfg("model=mlp", f"ckpt_path={logreg_ckpt}"))
    assert "is a checkpoint of model=logreg (zoo.nets.logreg.LogisticRegression)" in str(err.value)
    assert "this run builds model=mlp (zoo.nets.mlp.MLP)" in str(err.value)
    with pytest.raises(ConfigError, match="is a checkpoint of model=logreg"):
        train(make_cfg("model=mlp", "train=false", f"ckpt_path={logreg_ckpt}"))


def test_checkpoint_with_other_sizes_or_truncated_is_refused(make_cfg, tmp_path, logreg_ckpt):
    # The checkpoint's saved config names the changed key; accepted, the weights themselves do not fit.
    with pytest.raises(ConfigError, match=r"trained with other settings .*data._target_: .*resume_accept="):
        train(make_cfg("model=logreg", "data=nyc_zip", f"ckpt_path={logreg_ckpt}"))
    with pytest.raises(ConfigError, match=r"do not fit model=logreg as configured .*net.linear.weight"):
        train(make_cfg("model=logreg", "data=nyc_zip", "resume_accept=[data,model]", f"ckpt_path={logreg_ckpt}",
                       "train=false"))  # tested on other data (a resume on other data is refused: test_plan.py)
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(logreg_ckpt.read_bytes()[:1000])
    with pytest.raises(ConfigError, match=r"broken.ckpt cannot be read as a Lightning checkpoint .*truncated"):
        train(make_cfg("model=logreg", f"ckpt_path={broken}"))


@pytest.mark.parametrize(("torch_version", "index", "fallback"), [
    ("2.5.1+cpu", "--index-url https://download.pytorch.org/whl/cpu", True),
    ("2.5.1", "", False),  # PyPI's default wheels already: no other index to fall back from
], ids=["wheel-index", "pypi"])
def test_a_torch_mismatch_names_a_reinstall_that_also_works_without_the_wheel_index(monkeypatch, torch_version,
                                                                                     index, fallback):
    import zoo.errors as errors

    monkeypatch.setattr(errors, "_version", {"torch": torch_version, "torchvision": "0.20.0"}.get)
    line = errors.install_message(RuntimeError("operator torchvision::nms does not exist"))
    assert line.startswith(f"torch {torch_version} and torchvision 0.20.0 do not work together")
    assert f"pip install --force-reinstall torch==2.5.1 torchvision{' ' + index if index else ''}" in line
    assert ("where that index cannot be reached: pip install --force-reinstall torch torchvision," in line) == fallback
    assert errors.install_message(RuntimeError("something else")) is None


@pytest.mark.parametrize("error", [ConfigError("bad key"), RuntimeError("a bug"), KeyError("missing")])
def test_a_guard_that_fails_stops_the_command(error, caplog):
    """Hydra turns a callback's error (an ``Exception``) into a warning and runs on without the guard: Zoo's
    callbacks end the command instead (``SystemExit`` passes Hydra), a ZooError with its one line (exit 2),
    anything else with its traceback (exit 1)."""
    from zoo.errors import stops_the_command

    with pytest.raises(SystemExit) as stopped, stops_the_command():
        raise error
    assert stopped.value.code == (2 if isinstance(error, ConfigError) else 1)
    assert str(error).strip("'") in caplog.text
