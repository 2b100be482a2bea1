"""Base DataModule for torchvision's IDX image datasets, kept in memory as uint8 tensors."""

import hashlib
import os
from pathlib import Path
from typing import ClassVar

import lightning as L
import torch
from torchvision.datasets import MNIST

from datamodules.tensor_loader import TensorBatchLoader
from zoo.errors import DataNotFoundError


class VisionDataModule(L.LightningDataModule):
    """MNIST-style dataset decoded once into ``uint8 [N, H, W]`` and batched by indexing.

    The decoded images stay on the training device; each batch is normalised there. ``prepare_data``
    downloads (once, rank zero); ``setup`` splits the official training set into train/val with a
    seeded generator and uses the official test set for testing.

    Args:
        data_dir: Folder holding ``<DatasetName>/raw/`` (created when downloading).
        batch_size: Training batch size per device.
        eval_batch_size: Batch size for validation and test.
        val_size: Images of the official training set held out for validation.
        split_seed: Seed of the train/val split (fixed, so all runs share one split).
        seed: Seed of the per-epoch shuffling.
        download: Fetch missing files from the public source.
    """

    dataset_cls: ClassVar[type[MNIST]] = MNIST
    mean: ClassVar[float] = 0.1307
    std: ClassVar[float] = 0.3081
    # What the data is and which task reads its batches of (x, y) (checked against the model before building).
    kind: ClassVar[str] = "image"
    task: ClassVar[str] = "zoo.tasks.Classifier"

    def __init__(
        self,
        data_dir: str | os.PathLike = "data",
        batch_size: int = 128,
        eval_batch_size: int = 1000,
        val_size: int = 5000,
        split_seed: int = 42,
        seed: int = 0,
        download: bool = True,
    ) -> None:
        super().__init__()
        self.data_dir = Path(data_dir).expanduser()
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.val_size, self.split_seed, self.seed = val_size, split_seed, seed
        self.download = download
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    # ----------------------------------------------------------------------------- files
    @property
    def raw_dir(self) -> Path:
        return self.data_dir / self.dataset_cls.__name__ / "raw"

    def _missing_help(self) -> str:
        names = ", ".join(Path(url).name for url, _ in self.dataset_cls.resources)
        return (
            f"{self.dataset_cls.__name__} files not found in {self.raw_dir} (expected {names}, or the same names "
            f"without .gz). Fix: run once with internet access and data.download=true, or copy the official "
            f"files into that folder, or point data.data_dir (or the ZOO_DATA_DIR environment variable) at a "
            f"writable folder that contains {self.dataset_cls.__name__}/raw/."
        )

    def _check_archives(self) -> None:
        """Refuse archives whose checksum is wrong instead of letting a download overwrite them."""
        for url, md5 in self.dataset_cls.resources:
            path = self.raw_dir / Path(url).name
            if path.is_file() and hashlib.md5(path.read_bytes()).hexdigest() != md5:
                raise DataNotFoundError(
                    f"{path} is corrupt or truncated (md5 differs from the official {md5}). Zoo leaves it "
                    f"untouched: move or delete it yourself, then run again to re-download or re-copy it."
                )

    def _files(self, compressed: bool) -> list[Path]:
        names = [Path(url).name for url, _ in self.dataset_cls.resources]
        return [self.raw_dir / (n if compressed else n.removesuffix(".gz")) for n in names]

    def prepare_data(self) -> None:
        if all(f.is_file() for f in self._files(compressed=False)):
            return
        self._check_archives()
        if not self.download and not all(f.is_file() for f in self._files(compressed=True)):
            raise DataNotFoundError(self._missing_help() + " Downloading is off (data.download=false).")
        try:
            # With the archives present and their md5 right, torchvision only decompresses them.
            self.dataset_cls(str(self.data_dir), train=True, download=True)
        except PermissionError as err:
            raise DataNotFoundError(
                f"Cannot write the decompressed files into {self.raw_dir}: it is read-only. Copy the folder to "
                f"a writable place and point data.data_dir (or ZOO_DATA_DIR) there."
            ) from err
        except (OSError, RuntimeError) as err:
            raise DataNotFoundError(f"{self._missing_help()} The download failed: {err}") from err

    # ----------------------------------------------------------------------------- tensors
    def _load(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        if not all(f.is_file() for f in self._files(compressed=False)):
            raise DataNotFoundError(self._missing_help())
        try:
            ds = self.dataset_cls(str(self.data_dir), train=train, download=False)
        except (RuntimeError, ValueError, EOFError, OSError) as err:  # a truncated file fails in a tensor view
            raise DataNotFoundError(
                f"Could not decode the {self.dataset_cls.__name__} files in {self.raw_dir} ({err}). They look "
                f"truncated or corrupt: move them away and run again to re-download or re-copy them."
            ) from err
        return ds.data, ds.targets  # uint8 [N, H, W], int64 [N]

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        images, targets = self._load(train=True)
        if not 0 < self.val_size < len(targets):
            raise ValueError(f"data.val_size must be between 1 and {len(targets) - 1}, got {self.val_size}.")
        order = torch.randperm(len(targets), generator=torch.Generator().manual_seed(self.split_seed))
        val, train = order[: self.val_size], order[self.val_size :]
        self.splits = {
            "train": (images[train], targets[train]),
            "val": (images[val], targets[val]),
            "test": self._load(train=False),
        }

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.dataset_cls.classes)

    def facts(self) -> dict[str, int | str]:
        """Sizes read from the loaded data (after :meth:`setup`), for the model configs' ``${facts.<name>}``."""
        self.setup("fit")
        images, _ = self.splits["train"]  # uint8 [N, H, W]
        height, width = images.shape[1:]
        return {"task": self.task, "num_classes": len(self.class_names), "in_channels": 1, "height": height,
                "width": width, "num_features": height * width}

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 ``[B, H, W]`` -> standardised float ``[B, 1, H, W]``."""
        return ((x.float() / 255.0 - self.mean) / self.std).unsqueeze(1)

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> TensorBatchLoader:
        trainer = self.trainer
        device = trainer.strategy.root_device if trainer is not None else torch.device("cpu")
        images, targets = self.splits[split]
        if images.device != device:  # move once: later epochs index tensors already on the device
            images, targets = images.to(device), targets.to(device)
            self.splits[split] = (images, targets)
        return TensorBatchLoader(
            images,
            targets,
            batch_size,
            shuffle=shuffle,
            seed=self.seed,
            transform=self.normalise,
            rank=trainer.global_rank if trainer is not None else 0,
            world_size=trainer.world_size if trainer is not None else 1,
        )

    def train_dataloader(self) -> TensorBatchLoader:
        overfit = self.trainer is not None and self.trainer.overfit_batches > 0  # debug=overfit: the same batches
        return self._loader("train", self.batch_size, shuffle=not overfit)

    def val_dataloader(self) -> TensorBatchLoader:
        return self._loader("val", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> TensorBatchLoader:
        return self._loader("test", self.eval_batch_size, shuffle=False)

    def predict_dataloader(self) -> TensorBatchLoader:
        return self._loader("test", self.eval_batch_size, shuffle=False)
