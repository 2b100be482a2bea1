"""The image DataModules: real IDX parsing, seeded splits, per-epoch shuffling, DDP shards."""

import hashlib
from pathlib import Path

import lightning as L
import pytest
import torch

from datamodules.fashion_mnist import FashionMNISTDataModule
from datamodules.mnist import MNISTDataModule
from datamodules.tensor_loader import TensorBatchLoader
from tests.fakes import fake_images, write_idx_dataset


def _dm(data_dir: Path, cls=MNISTDataModule, **kw) -> MNISTDataModule:
    dm = cls(data_dir=data_dir, batch_size=64, eval_batch_size=50, val_size=100, **kw)
    dm.prepare_data()
    dm.setup("fit")
    return dm


@pytest.mark.parametrize("cls", [MNISTDataModule, FashionMNISTDataModule])
def test_split_sizes_and_content(data_dir, cls):
    dm = _dm(data_dir, cls)
    sizes = {k: len(v[1]) for k, v in dm.splits.items()}
    assert sizes == {"train": 500, "val": 100, "test": 200}
    images, labels = fake_images(600, seed=1)  # what tests/fakes.py wrote as the training file
    train_x, train_y = dm.splits["train"]
    assert train_x.dtype == torch.uint8 and train_x.shape == (500, 28, 28)
    # Every training image is one of the file's images with its own label (nothing misaligned).
    row = torch.from_numpy(images).flatten(1)
    for x, y in zip(train_x[:20], train_y[:20], strict=True):
        match = (row == x.flatten()).all(dim=1).nonzero()
        assert len(match) == 1 and labels[match.item()] == y.item()


def test_split_is_fixed_by_split_seed(data_dir):
    a, b = _dm(data_dir), _dm(data_dir)
    c = _dm(data_dir, split_seed=7)
    assert torch.equal(a.splits["val"][0], b.splits["val"][0])
    assert not torch.equal(a.splits["val"][0], c.splits["val"][0])
    val, train = a.splits["val"][0].flatten(1), a.splits["train"][0].flatten(1)
    assert not (val[:, None] == train[None]).all(-1).any(), "validation images leaked into training"


def test_batches_are_normalised_float(data_dir):
    dm = _dm(data_dir)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (64, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    raw = dm.splits["train"][0].float() / 255
    assert x.min() == pytest.approx(((raw.min() - dm.mean) / dm.std).item(), abs=1e-5)


def test_shuffling_is_seeded_per_epoch_and_covers_every_sample(data_dir):
    dm = _dm(data_dir, seed=3)
    loader = dm.train_dataloader()

    def epoch_labels(epoch: int) -> torch.Tensor:
        loader.sampler.set_epoch(epoch)
        return torch.cat([y for _, y in loader])

    e0, e0_again, e1 = epoch_labels(0), epoch_labels(0), epoch_labels(1)
    assert torch.equal(e0, e0_again)
    assert not torch.equal(e0, e1)
    assert len(e0) == 500 and torch.equal(e0.sort().values, dm.splits["train"][1].sort().values)
    other_seed = _dm(data_dir, seed=4).train_dataloader()
    assert not torch.equal(e0, torch.cat([y for _, y in other_seed]))
    # Evaluation batches keep the file order.
    assert torch.equal(torch.cat([y for _, y in dm.val_dataloader()]), dm.splits["val"][1])


def test_overfit_batches_turns_shuffling_off(data_dir):
    """``debug=overfit`` (Lightning's ``overfit_batches``) must see the same batches every epoch."""
    dm = _dm(data_dir)
    for overfit, shuffled in ((0, True), (3, False)):
        dm.trainer = L.Trainer(overfit_batches=overfit, accelerator="cpu", logger=False, enable_progress_bar=False)
        assert dm.train_dataloader().sampler.shuffle is shuffled


@pytest.mark.parametrize("n", [10, 11])
def test_shards_of_all_ranks_cover_the_data_exactly_once(n):
    x, y = torch.arange(n), torch.arange(n)
    seen = torch.cat([
        torch.cat([b for _, b in TensorBatchLoader(x, y, 3, shuffle=True, seed=1, rank=r, world_size=2)])
        for r in range(2)
    ])
    assert torch.equal(seen.sort().values, y)


def test_drop_last_and_len():
    x = y = torch.arange(10)
    assert len(TensorBatchLoader(x, y, 4)) == 3 and len(TensorBatchLoader(x, y, 4, drop_last=True)) == 2
    assert [len(b) for _, b in TensorBatchLoader(x, y, 4, drop_last=True)] == [4, 4]
    with pytest.raises(ValueError, match="batch_size"):
        TensorBatchLoader(x, y, 0)


def test_gzip_archives_are_decompressed_by_torchvision(tmp_path, monkeypatch):
    raw = write_idx_dataset(tmp_path, "MNIST", compress=True)
    # The fakes are not the official files: let torchvision's md5 check accept them.
    resources = [
        (url, hashlib.md5((raw / Path(url).name).read_bytes()).hexdigest()) for url, _ in MNISTDataModule.dataset_cls.resources
    ]
    monkeypatch.setattr(MNISTDataModule.dataset_cls, "resources", resources)
    dm = _dm(tmp_path)
    assert (raw / "train-images-idx3-ubyte").is_file()
    assert len(dm.splits["test"][1]) == 200
