"""Nothing silently wrong: nonsense settings, wrong data files and stale caches each end in one clear error.

One parametrised test per class of fault: settings that cannot mean what they say, IDX files that are not what
their names claim, Planetoid files that are swapped or broken, NYC rows that are duplicated or out of range (and a
cache that must follow its raw files), a diverging loss, an input size the network cannot take, storage Zoo cannot
write. Every error is a :class:`~zoo.errors.ZooError` (one line, exit code 2 from ``train.py``).
"""

import errno
import hashlib
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import datamodules.vision as vision
from datamodules import cora
from datamodules.nyc_zip import NYCZipDataModule
from datamodules.nyc_zip_dataset import NYCDataError, NYCZipDataset
from hydra_plugins.zoo_hydra.callbacks import PreflightChecks, RunDirGuard
from tests.conftest import compose_cfg
from tests.fakes import idx_bytes, write_idx_dataset
from tests.graph_fakes import write_fake_cora, write_fake_nyc
from zoo.errors import (
    ConfigError,
    DataError,
    DataNotFoundError,
    DivergedError,
    StorageError,
    reported_as_message,
)
from zoo.registry import names
from zoo.run import rundir, runner
from zoo.run.build import build
from zoo.run.plan import make_plan
from zoo.run.runner import train

FAST = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
        "trainer.enable_model_summary=false", "logger=none"]


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "processed" not in p.parts}


# ------------------------------------------------------------------------------------------ settings
NONSENSE = [
    (["seed=abc"], "seed='abc': must be an integer"),
    (["seed=-1"], "seed=-1: must be an integer in [0, 4294967295]"),
    (["seed=1.5"], "seed=1.5: must be an integer"),
    (["data.split_seed=abc"], "data.split_seed='abc': must be an integer"),
    (["data.split_seed=null"], "data.split_seed=null: must be an integer"),
    (["trainer.max_epochs=-1"], "trainer.max_epochs=-1: would train forever"),
    (["trainer.limit_train_batches=0"], "trainer.limit_train_batches=0: must be > 0"),
    (["trainer.limit_train_batches=0.0"], "trainer.limit_train_batches=0.0: must be > 0"),
    (["trainer.limit_test_batches=0"], "trainer.limit_test_batches=0: the run would test nothing"),
    (["trainer.limit_val_batches=2.5"], "trainer: You have passed invalid value 2.5 for limit_val_batches"),
    (["model=mlp", "model.net.hidden_sizes=[]"], "model.net.hidden_sizes=[]: must hold at least one size"),
    (["model=cnn", "model.net.channels=[]"], "model.net.channels=[]: must hold at least one size"),
    (["trainer.devices=0"], "trainer: `Trainer(devices=0)` value is not a valid input"),  # Lightning's own words
    (["trainer.devices=abc"], "`devices` selected with `CPUAccelerator` should be an int > 0"),
    (["trainer.precision=17"], "trainer: Precision 17 is invalid. Allowed precision values:"),
    (["data=nyc_zip", "model=gcn", "data.split.train_frac=1.5"], "data.split.train_frac=1.5: must be in (0, 1)"),
    (["data=nyc_zip", "model=gcn", "data.split.val_frac=-0.1"], "data.split.val_frac=-0.1: must be in [0, 1)"),
    (["data=nyc_zip", "model=gcn", "data.split.train_frac=0.7", "data.split.val_frac=0.3"],
     "data.split.train_frac=0.7: must be < 1 - val_frac = 0.7"),
    (["data=nyc_zip", "model=gcn", "data.split.seed=abc"], "data.split.seed='abc': must be an integer"),
    (["data=nyc_zip", "model=gcn", "data/split=kfold", "data.split.fold=7"],
     "data.split.fold=7: must be an integer in 0..4 (folds=5)"),
    (["data.val_size=600"], "data.val_size=600: must be between 1 and 599"),
    (["model=delineation_gcn", "data=nyc_zip", "model.max_rounds=0"], "model.max_rounds=0: must be >= 1"),
]
if not torch.cuda.is_available():
    NONSENSE.append((["trainer.accelerator=gpu"], "trainer.accelerator=gpu: no GPU is visible on this machine: use trainer=cpu"))


@pytest.mark.parametrize(("overrides", "message"), NONSENSE, ids=[" ".join(o) for o, _ in NONSENSE])
def test_nonsense_setting_is_refused_with_its_key(make_cfg, tmp_path, overrides, message):
    cfg = make_cfg("model=logreg", *FAST, *overrides)
    with pytest.raises(ConfigError) as err:
        train(cfg)
    assert message in str(err.value) and "\n" not in str(err.value)  # one line
    assert not (tmp_path / "metrics.json").exists() and not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize("overrides", [
    ["trainer.max_epochs=-1", "trainer.max_steps=10"], ["trainer.max_epochs=-1", "trainer.max_time=00:00:01:00"],
    ["trainer.limit_val_batches=0"], ["trainer.limit_test_batches=0", "test=false"], ["seed=null"], ["data=nyc_zip", "model=gcn", "seed=null"],
    ["trainer=ddp_cpu", "trainer.devices=1"], *([f"experiment={e}"] for e in names("experiment")),
], ids=lambda o: " ".join(o))
def test_sensible_settings_pass(make_cfg, overrides):
    """The checks refuse nonsense only: the delineation experiments' max_epochs=-1 (rounds stop them) passes."""
    cfg = make_cfg(*overrides)
    make_plan(cfg)
    assert build(cfg.model) is not None and build(cfg.trainer) is not None


# ------------------------------------------------------------------------------------------- IDX files
def _swap_labels_with_test(raw: Path) -> None:
    shutil.copy(raw / "t10k-labels-idx1-ubyte", raw / "train-labels-idx1-ubyte")


def _swap_images_and_labels(raw: Path) -> None:
    images, labels = raw / "train-images-idx3-ubyte", raw / "train-labels-idx1-ubyte"
    data = images.read_bytes()
    images.write_bytes(labels.read_bytes())
    labels.write_bytes(data)


def _bad_magic(raw: Path) -> None:
    path = raw / "t10k-images-idx3-ubyte"
    path.write_bytes(b"\x1f\x8b\x08\x00" + path.read_bytes()[4:])  # a gzip header: not decompressed


def _padded(raw: Path) -> None:
    path = raw / "train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes() + b"\x00" * 10)


def _label_out_of_range(raw: Path) -> None:
    labels = np.frombuffer((raw / "train-labels-idx1-ubyte").read_bytes()[8:], dtype=np.uint8).copy()
    labels[7] = 12
    (raw / "train-labels-idx1-ubyte").write_bytes(idx_bytes(labels))


def _other_image_size(raw: Path) -> None:
    (raw / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((200, 20, 20), dtype=np.uint8)))


def _official_size_wrong_md5(raw: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vision, "OFFICIAL_COUNTS", {"train": 600, "t10k": 200})  # the fakes claim official sizes


def _another_datasets_files(raw: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fashion-MNIST's files copied into MNIST/raw (known md5s: here the fakes' own, registered as official)."""
    fashion = write_idx_dataset(raw.parents[1] / "other", "FashionMNIST")
    known = {hashlib.md5(p.read_bytes()).hexdigest(): f"FashionMNIST/raw/{p.name}" for p in fashion.iterdir()}
    monkeypatch.setattr(vision, "_KNOWN", known)
    for p in fashion.iterdir():
        shutil.copy(p, raw / p.name)


BAD_IDX = [
    (_swap_labels_with_test, r"train-images-idx3-ubyte holds 600 images but .*train-labels-idx1-ubyte 200 labels"),
    (_swap_images_and_labels, r"train-images-idx3-ubyte holds a 1-d array \[600\], not images"),
    (_bad_magic, r"t10k-images-idx3-ubyte is not an IDX file of unsigned bytes \(its magic number is 1f8b0800"),
    (_padded, r"train-labels-idx1-ubyte holds 618 bytes but its header announces shape \[600\]"),
    (_label_out_of_range, r"train-labels-idx1-ubyte: label 12 of item 7 .* outside 0..9"),
    (_other_image_size, r"training images .* are \[28, 28\] but the test images \[20, 20\]"),
    (_official_size_wrong_md5, r"train-images-idx3-ubyte has the size of the official MNIST file but not its md5"),
    (_another_datasets_files, r"train-images-idx3-ubyte is the official FashionMNIST/raw/train-images-idx3-ubyte, "
                              r"not MNIST's"),
]


@pytest.mark.parametrize(("corrupt", "message"), BAD_IDX, ids=[c.__name__.strip("_") for c, _ in BAD_IDX])
def test_wrong_idx_file_is_refused_and_kept(tmp_path, monkeypatch, corrupt, message):
    raw = write_idx_dataset(tmp_path / "data", "MNIST")
    if corrupt.__code__.co_argcount == 2:
        corrupt(raw, monkeypatch)
    else:
        corrupt(raw)
    before = _snapshot(raw)
    cfg = compose_cfg(["trainer.accelerator=cpu", "model=logreg", "data=mnist", *FAST], tmp_path / "run",
                      tmp_path / "data")
    with pytest.raises(DataError, match=message) as err:
        train(cfg)
    assert "\n" not in str(err.value)
    assert _snapshot(raw) == before
    assert not (tmp_path / "run" / "metrics.json").exists()


# ------------------------------------------------------------------------------------------- Cora files
def _swap(raw: Path, a: str, b: str) -> None:
    pa, pb = raw / f"ind.cora.{a}", raw / f"ind.cora.{b}"
    data = pa.read_bytes()
    pa.write_bytes(pb.read_bytes())
    pb.write_bytes(data)


BAD_CORA = [
    (("y", "ty"), r"ind.cora.y: 30 label rows but ind.cora.x has 14 rows"),
    (("graph", "x"), r"ind.cora.x cannot be read as Planetoid's ind.cora.x"),
    (("allx", "ally"), r"ind.cora.allx: 7 feature columns but ind.cora.x has 1433"),
    (("test.index", "y"), r"ind.cora.y cannot be read as Planetoid's ind.cora.y"),
    (("truncate", "graph"), r"ind.cora.graph cannot be read"),
]


@pytest.mark.parametrize(("files", "message"), BAD_CORA, ids=["-".join(f) for f, _ in BAD_CORA])
def test_swapped_or_broken_cora_files_are_named(tmp_path, files, message):
    raw = write_fake_cora(tmp_path)
    if files[0] == "truncate":
        path = raw / f"ind.cora.{files[1]}"
        path.write_bytes(path.read_bytes()[:100])
    else:
        _swap(raw, *files)
    before = _snapshot(raw)
    with pytest.raises(DataError, match=message) as err:
        cora.CoraDataModule(tmp_path, download=False).setup()
    assert "\n" not in str(err.value)
    assert _snapshot(raw) == before


def test_cora_files_swapped_with_official_ones_are_recognised(tmp_path, monkeypatch):
    raw = write_fake_cora(tmp_path)
    monkeypatch.setattr(cora, "CORA_SHA256", {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in raw.iterdir()})
    _swap(raw, "x", "tx")
    with pytest.raises(DataError, match=r"ind.cora.x holds the official ind.cora.tx, not ind.cora.x: the files are "
                                        r"swapped"):
        cora.CoraDataModule(tmp_path, download=False).setup()


def test_cora_cache_follows_the_raw_files(tmp_path):
    raw = write_fake_cora(tmp_path)
    first = cora.CoraDataModule(tmp_path, download=False).load()
    write_fake_cora(tmp_path, seed=1)  # other features, labels and edges under the same names
    second = cora.CoraDataModule(tmp_path, download=False).load()
    assert not torch.equal(first.y, second.y)
    assert len(list((raw.parent / "processed").glob("data_*.pt"))) == 2


# ------------------------------------------------------------------------------------------- NYC rows
def _edit(raw: Path, name: str, edit) -> None:
    path = raw / name
    edit(pd.read_csv(path)).to_csv(path, index=False)


def _set(col: str, row: int, value: object):
    def edit(df: pd.DataFrame) -> pd.DataFrame:
        df[col] = df[col].astype(object)
        df.loc[row, col] = value
        return df
    return edit


BAD_NYC = [
    ("zips_merged.csv", lambda d: pd.concat([d, d.iloc[[3]]], ignore_index=True),
     r"zips_merged.csv: w_zip/h_zip repeats at lines 5, \d+ \(first w_zip=\d+, h_zip=\d+\)"),
    ("zips_merged.csv", _set("true_label", 4, 2.5), r"zips_merged.csv: column 'true_label' is not a whole number at "
                                                    r"line 6 \(value 2.5\)"),
    ("zips_merged.csv", lambda d: d.assign(true_label=9), r"zips_merged.csv: column 'true_label' is not a code in 1..5 "
                                                          r"at lines 2, 3, 4 \(and \d+ more\)"),
    ("zips_merged.csv", _set("initialFeat", 2, 0.0), r"column 'initialFeat' is not a code in 1..5 at line 4"),
    ("zips_merged.csv", _set("total", 5, -3), r"zips_merged.csv: column 'total' is negative at line 7"),
    ("zips_merged.csv", _set("total", 6, "inf"), r"zips_merged.csv: column 'total' is infinite at line 8"),
    ("zips_merged.csv", _set("true_label", 0, 2),
     r"zips_merged.csv: true_label differs between the rows of work ZIP 10001 \(lines 2"),
    ("zipcode_population_Jobs.csv", lambda d: pd.concat([d, d.iloc[[0]]], ignore_index=True),
     r"zipcode_population_Jobs.csv: ZIPCODE repeats at lines 2, \d+ \(first ZIPCODE=10001\)"),
    ("zips_area.csv", lambda d: pd.concat([d, d.iloc[[4]]], ignore_index=True),
     r"zips_area.csv: ZIPCODE/AREA repeats at lines 6, \d+"),
    ("zipcode_income.csv", _set("median_familyIncome(USD)", 3, -5.0),
     r"zipcode_income.csv: column 'median_familyIncome\(USD\)' is negative at line 5"),
]


NYC_IDS = ["duplicate-flow", "fractional-label", "label-9", "prior-0", "negative-flow", "infinite-flow", "label-differs",
           "duplicate-zip", "duplicate-polygon", "negative-income"]


@pytest.mark.parametrize(("name", "edit", "message"), BAD_NYC, ids=NYC_IDS)
def test_bad_nyc_rows_are_named_even_after_a_cached_run(tmp_path, name, edit, message):
    raw = write_fake_nyc(tmp_path)
    NYCZipDataset(raw.parent, download=False)  # a first run leaves a processed cache
    _edit(raw, name, edit)
    before = _snapshot(raw)
    with pytest.raises(NYCDataError, match=message) as err:
        NYCZipDataset(raw.parent, download=False)
    assert "\n" not in str(err.value)
    assert _snapshot(raw) == before


def test_nyc_cache_follows_the_raw_files(tmp_path):
    raw = write_fake_nyc(tmp_path)
    first = NYCZipDataset(raw.parent, download=False)[0]
    _edit(raw, "zips_merged.csv", lambda d: d.assign(true_label=3))
    second = NYCZipDataset(raw.parent, download=False)[0]
    assert first.y.unique().tolist() == [0, 1, 2, 3, 4] and second.y.unique().tolist() == [2]


def test_read_only_nyc_folder(tmp_path, monkeypatch):
    raw = write_fake_nyc(tmp_path)

    def denied(self, data_list, path):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(NYCZipDataset, "save", denied)
    with pytest.raises(DataNotFoundError, match=r"Cannot write the processed NYC ZIP graph under .*read-only"):
        NYCZipDataModule(tmp_path).setup()
    assert not list(raw.parent.glob("processed/nyc_zip_*.pt"))


# ------------------------------------------------------------------------------------------ training
def test_diverging_loss_is_not_a_result(make_cfg, tmp_path):
    cfg = make_cfg("model=rnn", "model.optimizer.lr=1e9", "trainer.max_epochs=2", "trainer.limit_val_batches=1",
                   "trainer.enable_model_summary=false")
    with pytest.raises(DivergedError, match=r"Training diverged: the final train/loss is .* more than 2x the starting "
                                            r"loss .*smaller learning rate \(now 1000000000.0\)"):
        train(cfg)
    assert not (tmp_path / "metrics.json").exists()
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()  # kept, as after any failure


def _small_mnist(tmp_path: Path, size: int) -> Path:
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 300), ("t10k", 100)):
        (raw / f"{split}-images-idx3-ubyte").write_bytes(idx_bytes(rng.integers(0, 255, (n, size, size))))
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(idx_bytes(rng.integers(0, 10, n)))
    return tmp_path / "data"


@pytest.mark.parametrize("model", ["logreg", "mlp", "cnn", "rnn"])
def test_the_nets_take_the_image_size_of_the_data(tmp_path, model):
    """Sizes come from the data (facts): 20x20 images build 20x20 nets."""
    data = _small_mnist(tmp_path, 20)
    metrics, _ = train(compose_cfg(["trainer.accelerator=cpu", f"model={model}", *FAST], tmp_path / "run", data))
    assert 0 <= metrics["test/acc"] <= 1


def test_image_size_the_net_cannot_take(tmp_path):
    data = _small_mnist(tmp_path, 20)
    cfg = compose_cfg(["trainer.accelerator=cpu", "model=cnn", "model.net.channels=[4,4,4,4,4]", *FAST],
                      tmp_path / "run", data)
    with pytest.raises(ConfigError, match=r"model.net \(zoo.nets.cnn.\w+\) cannot take the data's inputs: a batch "
                                          r"of shape \[1, 20, 20\] per example fails"):
        train(cfg)


# ------------------------------------------------------------------------------------------- storage
def test_full_disk_is_one_line(make_cfg, monkeypatch, caplog):
    def full(metrics, output_dir):
        raise OSError(errno.ENOSPC, "No space left on device", str(Path(output_dir) / "metrics.json"))

    monkeypatch.setattr(runner, "write_metrics", full)
    with pytest.raises(StorageError, match=r"No space left on the device while writing .*metrics.json: free some "
                                           r"space there, or point hydra.run.dir"):
        train(make_cfg("model=logreg", *FAST))
    with pytest.raises(SystemExit) as exit_info, reported_as_message():
        train(make_cfg("model=logreg", *FAST, output_dir=make_cfg().paths.output_dir + "/again"))
    assert exit_info.value.code == 2
    assert "StorageError: No space left on the device" in caplog.text and "Traceback" not in caplog.text


def _slurm_without_sbatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    return ["hydra/launcher=slurm", f"hydra.sweep.dir={tmp_path / 'sweep'}"], "hydra.sweep.dir"


def _unwritable_run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
    (tmp_path / "a_file").write_text("")
    return [f"hydra.run.dir={tmp_path / 'a_file' / 'run'}"], "hydra.run.dir"


def _read_only_run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "ro"))

    monkeypatch.setattr("tempfile.NamedTemporaryFile", read_only)
    return [f"hydra.run.dir={tmp_path / 'ro'}"], "hydra.run.dir"


def _slurm_without_its_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("hydra_plugins.hydra_submitit") else real(name, *a))
    return ["hydra/launcher=slurm", f"hydra.sweep.dir={tmp_path / 'sweep'}"], "hydra.sweep.dir"


PREFLIGHT = [
    (_slurm_without_sbatch, "ConfigError: hydra/launcher=slurm submits each job with SLURM's sbatch, which is not"),
    (_slurm_without_its_extra, r"ConfigError: hydra.launcher \(hydra_plugins.zoo_hydra.slurm.SlurmLauncher\) is not "
                               r"installed: install the sweeps extra, pip install 'zoo\[sweeps\]'"),
    (_unwritable_run_dir, "StorageError: Cannot write into"),
    (_read_only_run_dir, "StorageError: Cannot write .*/ro: Read-only file system"),
]


@pytest.mark.parametrize(("setup", "message"), PREFLIGHT, ids=[s.__name__.strip("_") for s, _ in PREFLIGHT])
def test_what_hydra_would_fail_on_is_checked_first(tmp_path, data_dir, monkeypatch, caplog, setup, message):
    overrides, dir_key = setup(tmp_path, monkeypatch)
    cfg = compose_cfg(overrides, tmp_path / "unused", data_dir)
    with pytest.raises(SystemExit) as exit_info:
        if dir_key == "hydra.sweep.dir":
            PreflightChecks().on_multirun_start(cfg)
        else:
            RunDirGuard().on_run_start(cfg)
    assert exit_info.value.code == 2
    assert any(__import__("re").search(message, r.getMessage()) for r in caplog.records), caplog.text


def test_preflight_passes_a_writable_run_dir(tmp_path, data_dir):
    cfg = compose_cfg([f"hydra.run.dir={tmp_path / 'run'}"], tmp_path / "unused", data_dir)
    RunDirGuard().on_run_start(cfg)
    rundir.release(tmp_path / "run")
    assert (tmp_path / "run").is_dir() and not os.listdir(tmp_path / "run")  # the probe file and the lock are gone


def test_the_run_directory_is_named_once(tmp_path, data_dir, monkeypatch):
    """The guard creates the run directory, checks it and locks it: a clock that ticks between two reads of
    ``hydra.run.dir`` (here: every call) must not leave an empty second run directory beside the run."""
    ticks = iter(range(100))
    monkeypatch.setattr(time, "strftime", lambda pattern, *args: f"2026-01-01_00-00-{next(ticks):02d}")
    cfg = compose_cfg([], tmp_path, data_dir)  # logs in tmp_path/logs
    RunDirGuard().on_run_start(cfg)
    try:
        (run,) = (tmp_path / "logs" / "runs").iterdir()
        assert str(run) == cfg.hydra.run.dir and (run / ".zoo.lock").is_file()
    finally:
        rundir.release(cfg.hydra.run.dir)


def test_a_run_without_validation_data_is_refused_before_training(make_cfg):
    """No validation nodes: val/acc, which picks the tested checkpoint, would be NaN (the first epoch's weights)."""
    with pytest.raises(ConfigError, match=r"no validation examples .* val/acc .* callbacks=none"):
        make_plan(make_cfg("model=gcn", "data=nyc_zip", "data.split.val_frac=0", "data.download=false"))
    cfg = make_cfg("model=gcn", "data=nyc_zip", "data.split.val_frac=0", "data.download=false", "callbacks=none")
    make_plan(cfg)  # no selection: the final weights are tested
    assert cfg.facts.num_val == 0


def test_metrics_json_is_always_valid_json(tmp_path):
    import json

    from zoo.run.runner import write_metrics

    path = write_metrics({"test/acc": 0.5, "val/acc_best": float("nan"), "val/loss_best": float("-inf")}, tmp_path)
    assert json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in metrics.json")) == {
        "test/acc": 0.5, "val/acc_best": None, "val/loss_best": None}
