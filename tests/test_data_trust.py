"""Data the run must not trust blindly: corrupt processed caches, a broken optional map, train/test overlap in the
image files, and Cora's class names in its confusion matrix."""

import csv
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.io.planetoid import read_planetoid_data

from datamodules.cora import CORA_CLASSES, CoraDataModule
from datamodules.fashion_mnist import FashionMNISTDataModule
from datamodules.mnist import MNISTDataModule
from datamodules.nyc_zip import NYCZipDataModule
from datamodules.vision import shared_images
from tests.conftest import compose_cfg
from tests.fakes import idx_bytes, write_idx_dataset
from tests.graph_fakes import write_fake_cora, write_fake_graphs, write_fake_nyc, write_fake_shapefile
from zoo.errors import DataError, DataNotFoundError
from zoo.run.runner import train

QUIET = ["trainer.enable_model_summary=false", "callbacks.progress_bar.refresh_rate=0", "data.download=false"]

# ----------------------------------------------------------------------------- corrupt processed caches
GRAPHS = {"cora": (write_fake_cora, CoraDataModule, "Cora", "data_*.pt", "ind.cora.graph"),
          "nyc_zip": (write_fake_nyc, NYCZipDataModule, "nyc_zip", "nyc_zip_*.pt", "zips_merged.csv")}
DAMAGE = {"truncated": lambda b: b[: len(b) // 2], "garbage": lambda b: b"not a torch file" * 10, "empty": lambda b: b""}


def _cache(tmp_path: Path, folder: str, pattern: str) -> Path:
    (path,) = (tmp_path / folder / "processed").glob(pattern)
    return path


def _corrupt_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "Corrupt cache" in r.getMessage()]


@pytest.mark.parametrize("damage", DAMAGE, ids=DAMAGE)
@pytest.mark.parametrize("graph", GRAPHS, ids=GRAPHS)
def test_corrupt_graph_cache_is_rebuilt_from_the_raw_files(tmp_path, caplog, graph, damage):
    write, datamodule, folder, pattern, _ = GRAPHS[graph]
    write(tmp_path)
    first = datamodule(tmp_path, download=False).load()
    cache = _cache(tmp_path, folder, pattern)
    cache.write_bytes(DAMAGE[damage](cache.read_bytes()))
    with caplog.at_level(logging.WARNING):
        second = datamodule(tmp_path, download=False).load()
    (warning,) = _corrupt_warnings(caplog)  # one line, naming the file
    assert str(cache) in warning and "rebuilding" in warning and "\n" not in warning
    assert sorted(first.keys()) == sorted(second.keys())
    assert all(torch.equal(v, second[k]) for k, v in first if isinstance(v, torch.Tensor))  # Data yields (key, value)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        datamodule(tmp_path, download=False).load()  # the rebuilt cache loads: no more warnings
    assert _cache(tmp_path, folder, pattern) == cache and not _corrupt_warnings(caplog)


@pytest.mark.parametrize("graph", GRAPHS, ids=GRAPHS)
def test_corrupt_cache_and_missing_raw_file_keep_the_clear_error(tmp_path, graph):
    write, datamodule, folder, pattern, raw_name = GRAPHS[graph]
    write(tmp_path)
    datamodule(tmp_path, download=False).load()
    _cache(tmp_path, folder, pattern).write_bytes(b"")
    (tmp_path / folder / "raw" / raw_name).unlink()
    with pytest.raises(DataNotFoundError, match=rf"{raw_name}.*data\.download=true"):
        datamodule(tmp_path, download=False).load()


@pytest.mark.parametrize("damage", DAMAGE, ids=DAMAGE)
@pytest.mark.parametrize("side", ["pre_transform.pt", "pre_filter.pt"])
@pytest.mark.parametrize("graph", GRAPHS, ids=GRAPHS)
def test_corrupt_pyg_side_file_is_rebuilt_with_one_warning(tmp_path, caplog, graph, side, damage):
    """PyG reads pre_transform.pt and pre_filter.pt before the processed file: a damaged one is rebuilt too."""
    write, datamodule, folder, pattern, _ = GRAPHS[graph]
    write(tmp_path)
    first = datamodule(tmp_path, download=False).load()
    path = tmp_path / folder / "processed" / side
    path.write_bytes(DAMAGE[damage](path.read_bytes()))
    with caplog.at_level(logging.WARNING):
        second = datamodule(tmp_path, download=False).load()
    (warning,) = _corrupt_warnings(caplog)
    assert str(path) in warning and "rebuilding" in warning and "\n" not in warning
    assert torch.equal(first.x, second.x) and torch.equal(first.edge_index, second.edge_index)
    torch.load(path, weights_only=True)  # written again, readable
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        datamodule(tmp_path, download=False).load()
    assert not _corrupt_warnings(caplog)


def test_cache_of_another_dataset_under_coras_name_is_not_trained_on(tmp_path, caplog):
    """NYC's processed graph copied over Cora's cache file: refused as another dataset's cache and rebuilt from
    Cora's raw files, never read as Cora."""
    write_fake_cora(tmp_path)
    write_fake_nyc(tmp_path)
    cora = CoraDataModule(tmp_path, download=False).load()
    NYCZipDataModule(tmp_path, download=False).load()
    cora_cache = _cache(tmp_path, "Cora", "data_*.pt")
    shutil.copy(_cache(tmp_path, "nyc_zip", "nyc_zip_*.pt"), cora_cache)
    with caplog.at_level(logging.WARNING):
        again = CoraDataModule(tmp_path, download=False).load()
    (warning,) = _corrupt_warnings(caplog)
    assert str(cora_cache) in warning and "NYCZipDataset" in warning and "rebuilding" in warning
    assert again.num_nodes == cora.num_nodes and torch.equal(again.y, cora.y)


def test_cache_without_its_identity_is_rebuilt(tmp_path, caplog):
    """A cache written by PyG itself (no identity: an older Zoo, or a file from elsewhere) is rebuilt once."""
    write_fake_cora(tmp_path)
    CoraDataModule(tmp_path, download=False).load()
    cache = _cache(tmp_path, "Cora", "data_*.pt")
    torch.save(torch.load(cache, weights_only=False)[:3], cache)
    with caplog.at_level(logging.WARNING):
        CoraDataModule(tmp_path, download=False).load()
    (warning,) = _corrupt_warnings(caplog)
    assert "does not say which dataset it holds" in warning


@pytest.mark.parametrize("graph", GRAPHS, ids=GRAPHS)
def test_read_only_cache_folder_is_named_as_read_only(tmp_path, monkeypatch, graph):
    """A damaged side file in a folder that cannot be written: the error says read-only, not "files not found"."""
    write, datamodule, folder, _, _ = GRAPHS[graph]
    write(tmp_path)
    datamodule(tmp_path, download=False).load()
    side = tmp_path / folder / "processed" / "pre_transform.pt"
    side.write_bytes(b"")

    def refuse(self, *args, **kwargs):
        raise OSError(30, "Read-only file system", str(self))  # EROFS, as a read-only mount answers

    monkeypatch.setattr(Path, "unlink", refuse)
    with pytest.raises(DataNotFoundError, match="read-only") as err:
        datamodule(tmp_path, download=False).load()
    assert "not found" not in str(err.value)


# ----------------------------------------------------------------------------- optional map
# (file, damage): pyogrio's DataSourceError for a .shp cut inside its header or of garbage, FeatureError for a cut .dbf.
SHAPEFILE_DAMAGE = {"shp-truncated": (".shp", lambda b: b[:50]), "shp-garbage": (".shp", lambda b: b"\x07" * 400),
                    "dbf-truncated": (".dbf", lambda b: b[: len(b) // 2])}


@pytest.mark.parametrize("damage", SHAPEFILE_DAMAGE, ids=SHAPEFILE_DAMAGE)
def test_broken_shapefile_costs_the_map_not_the_results(tmp_path, caplog, damage):
    pytest.importorskip("geopandas")
    data_dir = write_fake_graphs(tmp_path / "data")
    shp = write_fake_shapefile(data_dir / "nyc_zip" / "raw")
    suffix, edit = SHAPEFILE_DAMAGE[damage]
    shp.with_suffix(suffix).write_bytes(edit(shp.with_suffix(suffix).read_bytes()))
    run = tmp_path / "run"
    cfg = compose_cfg(["trainer.accelerator=cpu", "logger=csv", "experiment=prior_nyc_zip", *QUIET], run, data_dir)
    with caplog.at_level(logging.WARNING):
        metrics, _ = train(cfg)
    assert "test/acc" in metrics and (run / "metrics.json").is_file() and (run / "predictions.csv").is_file()
    assert not (run / "predictions_map.png").exists()
    (warning,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("No map")]
    assert str(shp) in warning and "predictions.csv was still written" in warning and "\n" not in warning


# ----------------------------------------------------------------------------- train/test overlap of images
def _replace_train_images(raw: Path, images: np.ndarray) -> None:
    """Replace the training pair by a valid IDX pair of ``images`` (labels: the first test labels, cycled)."""
    labels = np.frombuffer((raw / "t10k-labels-idx1-ubyte").read_bytes()[8:], dtype=np.uint8)
    (raw / "train-images-idx3-ubyte").write_bytes(idx_bytes(images))
    (raw / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.resize(labels, len(images))))


def _images(path: Path) -> np.ndarray:
    return np.frombuffer(path.read_bytes()[16:], dtype=np.uint8).reshape(-1, 28, 28)


@pytest.mark.parametrize("dm", [MNISTDataModule, FashionMNISTDataModule], ids=["MNIST", "FashionMNIST"])
def test_training_files_made_of_test_images_are_refused(tmp_path, dm):
    raw = write_idx_dataset(tmp_path, dm.dataset_cls.__name__)
    for kind in ("images-idx3", "labels-idx1"):
        shutil.copy(raw / f"t10k-{kind}-ubyte", raw / f"train-{kind}-ubyte")
    with pytest.raises(DataError, match=r"^200 of the 200 test images .* also appear in .*train-images-idx3-ubyte.*"
                                        r"delete the decompressed files") as err:
        dm(tmp_path, download=False, val_size=50).setup("fit")
    assert "\n" not in str(err.value)


def test_a_few_test_images_among_the_training_images_are_counted(tmp_path):
    raw = write_idx_dataset(tmp_path, "MNIST")
    train_images, test_images = _images(raw / "train-images-idx3-ubyte"), _images(raw / "t10k-images-idx3-ubyte")
    _replace_train_images(raw, np.concatenate([train_images[:570], test_images[::6][:30]]))
    with pytest.raises(DataError, match=r"^30 of the 200 test images"):
        MNISTDataModule(tmp_path, download=False, val_size=50).setup("fit")


def test_distinct_train_and_test_images_pass(tmp_path):
    write_idx_dataset(tmp_path, "MNIST")
    dm = MNISTDataModule(tmp_path, download=False, val_size=50)
    dm.setup("fit")
    assert len(dm.splits["train"][1]) == 550 and len(dm.splits["test"][1]) == 200


def test_overlap_check_is_quick_at_mnist_size():
    images = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (70_000, 28, 28), dtype=np.uint8))
    start = time.perf_counter()
    assert shared_images(images[:60_000], images[60_000:]) == 0
    assert shared_images(images[:60_000], images[59_990:60_010]) == 10
    assert time.perf_counter() - start < 2.0


# ----------------------------------------------------------------------------- Cora's class names
def test_cora_confusion_matrix_names_the_topics(make_cfg, tmp_path):
    _, objects = train(make_cfg("model=logreg", "data=cora", "trainer.max_epochs=1", *QUIET))
    rows = list(csv.reader((tmp_path / "confusion_matrix.csv").open()))
    assert rows[0][1:] == [row[0] for row in rows[1:]] == list(CORA_CLASSES) == list(objects["datamodule"].class_names)


# Papers per topic in the LINQS cora.content (e.g. the value_counts printed in StellarGraph's GCN demo notebook).
LINQS_COUNTS = {"Neural_Networks": 818, "Probabilistic_Methods": 426, "Genetic_Algorithms": 418, "Theory": 351,
                "Case_Based": 298, "Reinforcement_Learning": 217, "Rule_Learning": 180}
REAL_DATA = Path(os.environ.get("ZOO_REAL_DATA", Path(__file__).resolve().parents[2] / "shared" / "datasets"))


@pytest.mark.real_data
def test_cora_topics_are_in_label_order_of_the_official_files():
    """Each label's node count in the official Planetoid files is that of the topic named for it (the sizes are
    distinct, so this pins the order). Reads the raw files only; nothing is written."""
    raw = REAL_DATA / "Cora" / "raw"
    if not raw.is_dir():
        pytest.skip(f"no real Cora copy in {REAL_DATA} (set ZOO_REAL_DATA)")
    counts = torch.bincount(read_planetoid_data(str(raw), "cora").y).tolist()
    assert dict(zip(CORA_CLASSES, counts, strict=True)) == LINQS_COUNTS
