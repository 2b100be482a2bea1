"""The real datasets load with the documented sizes (optional: needs local copies, skipped without them).

Point ``ZOO_REAL_DATA`` at a folder holding ``MNIST/raw``, ``FashionMNIST/raw``, ``Cora/raw`` and ``nyc_zip/``
(the official files); by default ``../shared/datasets`` next to the checkout is used when it exists. The files
are copied into a temporary folder first: the source folder is never written to.
"""

import os
import shutil
from pathlib import Path

import pytest
from hydra.utils import instantiate

pytestmark = pytest.mark.real_data

SOURCE = Path(os.environ.get("ZOO_REAL_DATA", Path(__file__).resolve().parents[2] / "shared" / "datasets"))


@pytest.fixture
def real_dir(tmp_path: Path):
    """``copy(name)`` -> a writable data folder holding ``<name>/raw``, copied from ``SOURCE`` (skips when absent)."""

    def copy(name: str) -> Path:
        src = SOURCE / name / "raw" if (SOURCE / name / "raw").is_dir() else SOURCE / name  # nyc_zip: flat
        if not src.is_dir():
            pytest.skip(f"no real {name} copy in {SOURCE} (set ZOO_REAL_DATA)")
        shutil.copytree(src, tmp_path / name / "raw")
        for path in (tmp_path / name).rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        return tmp_path

    return copy


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_real_images(make_cfg, real_dir, name, folder):
    cfg = make_cfg(f"data={name}", "model=logreg", "data.download=false", "data.val_size=5000")
    dm = instantiate(cfg.data, data_dir=str(real_dir(folder)))
    dm.prepare_data()
    dm.setup("fit")
    dm.setup("test")
    assert {k: len(v[1]) for k, v in dm.splits.items()} == {"train": 55_000, "val": 5_000, "test": 10_000}


def test_real_cora(make_cfg, real_dir):
    cfg = make_cfg("data=cora", "model=gcn", "data.download=false")
    dm = instantiate(cfg.data, data_dir=str(real_dir("Cora")))
    dm.prepare_data()
    dm.setup("fit")
    d = dm.data
    assert (d.num_nodes, d.num_features) == (2708, 1433)
    assert [int(m.sum()) for m in (d.train_mask, d.val_mask, d.test_mask)] == [140, 500, 1000]


def test_real_nyc_zip(make_cfg, real_dir):
    cfg = make_cfg("data=nyc_zip", "model=gcn", "data.download=false")
    dm = instantiate(cfg.data, data_dir=str(real_dir("nyc_zip")))
    dm.prepare_data()
    dm.setup("fit")
    d = dm.data
    assert d.num_nodes == 208 and 35_000 < d.num_edges < 36_500
    assert sorted(d.y.unique().tolist()) == [0, 1, 2, 3, 4]


# ------------------------------------------------------------------ the real files, swapped or edited
def test_real_idx_files_of_another_split_or_dataset_are_refused(make_cfg, real_dir):
    """train-labels replaced by the 10k test labels, or Fashion-MNIST's files in MNIST/raw: named, not trained on."""
    from datamodules.fashion_mnist import FashionMNISTDataModule
    from datamodules.mnist import MNISTDataModule
    from zoo.errors import DataError

    root = real_dir("MNIST")
    real_dir("FashionMNIST")
    for cls in (MNISTDataModule, FashionMNISTDataModule):
        cls(root, download=False).prepare_data()  # decompress
    mnist, fashion = root / "MNIST" / "raw", root / "FashionMNIST" / "raw"
    shutil.copy(mnist / "train-labels-idx1-ubyte", root / "kept")
    shutil.copy(mnist / "t10k-labels-idx1-ubyte", mnist / "train-labels-idx1-ubyte")
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte is the official MNIST/raw/t10k-labels-idx1-ubyte"):
        MNISTDataModule(root, download=False).setup()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        shutil.copy(fashion / name, mnist / name)
    with pytest.raises(DataError, match=r"is the official FashionMNIST/raw/train-images-idx3-ubyte, not MNIST's"):
        MNISTDataModule(root, download=False).setup()


def test_real_cora_with_swapped_files_is_refused(real_dir):
    from datamodules.cora import CoraDataModule
    from zoo.errors import DataError

    raw = real_dir("Cora") / "Cora" / "raw"
    x, tx = (raw / "ind.cora.x").read_bytes(), (raw / "ind.cora.tx").read_bytes()
    (raw / "ind.cora.x").write_bytes(tx)
    (raw / "ind.cora.tx").write_bytes(x)
    with pytest.raises(DataError, match=r"ind.cora.x holds the official ind.cora.tx"):
        CoraDataModule(raw.parents[1], download=False).setup()


def test_real_nyc_labels_edited_after_a_run_are_read_again(real_dir):
    import pandas as pd

    from datamodules.nyc_zip_dataset import NYCDataError, NYCZipDataset

    raw = real_dir("nyc_zip") / "nyc_zip" / "raw"
    NYCZipDataset(raw.parent, download=False)
    flows = pd.read_csv(raw / "zips_merged.csv")
    flows.assign(true_label=9).to_csv(raw / "zips_merged.csv", index=False)
    with pytest.raises(NYCDataError, match=r"zips_merged.csv: column 'true_label' is not a code in 1..5 at lines 2, 3"):
        NYCZipDataset(raw.parent, download=False)


def test_real_fashion_archives_in_mnist_folder_are_named(tmp_path, real_dir):
    from datamodules.mnist import MNISTDataModule
    from zoo.errors import DataError

    fashion = real_dir("FashionMNIST") / "FashionMNIST" / "raw"
    shutil.copytree(fashion, tmp_path / "MNIST" / "raw")
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz is the official FashionMNIST/raw/"):
        MNISTDataModule(tmp_path, download=False).prepare_data()
