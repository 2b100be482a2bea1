"""Base DataModule for torchvision's IDX image datasets, kept in memory as uint8 tensors."""

import hashlib
import math
import os
import struct
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import ClassVar

import lightning as L
import numpy as np
import torch
from torchvision.datasets import MNIST, FashionMNIST
from torchvision.transforms import v2

import zoo.checks as checks
from datamodules.tensor_loader import TensorBatchLoader
from zoo.errors import ConfigError, DataError, DataNotFoundError

# md5 of the official DECOMPRESSED files (torchvision pins only the .gz archives): see PROVENANCE.md of the
# offline copies; the same values are published by many loaders.
OFFICIAL_MD5: dict[str, dict[str, str]] = {
    "MNIST": {
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    },
    "FashionMNIST": {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    },
}
# The official files' numbers of images: a file that claims them must BE the official file (md5 checked).
OFFICIAL_COUNTS = {"train": 60000, "t10k": 10000}
_REPLACE = "Zoo leaves it untouched: move it away and run again to re-decompress, re-download or re-copy the official file."
_KNOWN = {md5: f"{dataset}/raw/{name}" for dataset, files in OFFICIAL_MD5.items() for name, md5 in files.items()}


def idx_header(path: Path) -> tuple[int, tuple[int, ...]]:
    """``(ndim, shape)`` of a uint8 IDX file, after checking its magic number and that its length fits the shape.

    Raises:
        DataError: Not an IDX file of unsigned bytes, or truncated/padded.
    """
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(4)
        zero, dtype, ndim = struct.unpack(">HBB", head) if len(head) == 4 else (1, 0, 0)
        dims = f.read(4 * ndim)
    if zero != 0 or dtype != 0x08 or ndim == 0 or len(dims) != 4 * ndim:
        raise DataError(f"{path} is not an IDX file of unsigned bytes (its magic number is {head.hex() or 'empty'}, "
                        f"expected 00000801 for labels or 00000803 for images). {_REPLACE}")
    shape = struct.unpack(f">{ndim}I", dims)
    expected = 4 + 4 * ndim + math.prod(shape)
    if size != expected:
        raise DataError(f"{path} holds {size:,} bytes but its header announces shape {list(shape)} ({expected:,} "
                        f"bytes): it is truncated or corrupt. {_REPLACE}")
    return ndim, shape


def shared_images(train: torch.Tensor, test: torch.Tensor) -> int:
    """How many of the ``test`` images (uint8 ``[N, H, W]``) appear byte for byte among the ``train`` images.

    Each image is hashed (BLAKE2b, 16 bytes) on its own: about 0.15 s for MNIST's 70,000 images.
    """
    def digests(images: torch.Tensor) -> list[bytes]:
        return [hashlib.blake2b(x.tobytes(), digest_size=16).digest() for x in np.ascontiguousarray(images.numpy())]

    seen = set(digests(train))
    return sum(d in seen for d in digests(test))


class VisionDataModule(L.LightningDataModule):
    """MNIST-style dataset decoded once into ``uint8 [N, H, W]`` and batched by indexing.

    The decoded images stay on the training device; each batch is normalised there, and training batches
    are first augmented there when ``augment`` is given (validation and test batches never are). ``prepare_data``
    downloads (once, rank zero); ``setup`` splits the official training set into train/val with a
    seeded generator and uses the official test set for testing; it refuses train and test files that share an
    image (:func:`shared_images`).

    Args:
        data_dir: Folder holding ``<DatasetName>/raw/`` (created when downloading).
        batch_size: Training batch size per device.
        eval_batch_size: Batch size for validation and test.
        val_size: Images of the official training set held out for validation.
        split_seed: Seed of the train/val split (fixed, so all runs share one split).
        seed: Seed of the per-epoch shuffling.
        download: Fetch missing files from the public source.
        augment: Transforms applied in order to each training batch, float ``[B, 1, H, W]`` in ``[0, 1]``
            (before standardising), on its device. :mod:`datamodules.augment` draws new parameters per sample;
            a stock ``torchvision.transforms.v2`` transform also fits but draws one set for the whole batch.
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
        augment: Sequence[Callable[[torch.Tensor], torch.Tensor]] | None = None,
    ) -> None:
        super().__init__()
        checks.integer("data.batch_size", batch_size)
        checks.integer("data.eval_batch_size", eval_batch_size)
        checks.integer("data.val_size", val_size)  # its upper bound, the training set's size, is checked in setup
        checks.seed("data.split_seed", split_seed)
        checks.seed("data.seed", seed)
        if augment is not None and (isinstance(augment, str) or not isinstance(augment, Sequence)
                                    or not all(callable(t) for t in augment)):
            raise ValueError(f"data.augment={checks.shown(augment)}: must be a list of transforms, each a "
                             f"_target_ with its arguments (e.g. experiment=cnn_fashion_mnist_best's), or null")
        self.data_dir = Path(data_dir).expanduser()
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.val_size, self.split_seed, self.seed = val_size, split_seed, seed
        self.download = download
        self.augment = v2.Compose(list(augment)) if augment else None
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
        archives = {md5: f"{cls.__name__}/raw/{Path(url).name}" for cls in (MNIST, FashionMNIST)
                    for url, md5 in cls.resources}
        for url, md5 in self.dataset_cls.resources:
            path = self.raw_dir / Path(url).name
            found = hashlib.md5(path.read_bytes()).hexdigest() if path.is_file() else md5
            what = archives.get(found, f"{self.dataset_cls.__name__}/raw/{path.name}")
            if what != f"{self.dataset_cls.__name__}/raw/{path.name}":  # another split's or dataset's archive
                raise DataError(f"{path} is the official {what}, not {self.dataset_cls.__name__}'s {path.name}. "
                                f"{_REPLACE}")
            if found != md5:
                raise DataError(
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
    def check_files(self) -> None:
        """Validate the decompressed IDX files before they are decoded.

        Each file must have the IDX layout (magic number 2051 for images, 2049 for labels, a length that fits its
        header), images and labels of a split must agree in count, and train and test images in size. A file
        whose md5 is that of another official file (another split, Fashion-MNIST in MNIST's folder) is refused,
        and so is one that claims an official file's size (60,000 or 10,000 images) without its md5. Files of
        other sizes (your own data in this format) pass with these structural checks alone.
        """
        name = self.dataset_cls.__name__
        official = OFFICIAL_MD5.get(name, {})
        image_shapes = {}
        for split in ("train", "t10k"):
            images, labels = self.raw_dir / f"{split}-images-idx3-ubyte", self.raw_dir / f"{split}-labels-idx1-ubyte"
            counts = {}
            for path, ndim_expected, kind in ((images, 3, "images"), (labels, 1, "labels")):
                ndim, shape = idx_header(path)
                if ndim != ndim_expected:
                    raise DataError(f"{path} holds a {ndim}-d array {list(shape)}, not {kind} ({ndim_expected}-d): "
                                    f"the files may be swapped or renamed. {_REPLACE}")
                counts[kind] = shape[0]
                if kind == "images":
                    image_shapes[split] = shape[1:]
                md5 = hashlib.md5(path.read_bytes()).hexdigest()
                is_what = _KNOWN.get(md5)
                if is_what is not None and is_what != f"{name}/raw/{path.name}":
                    raise DataError(f"{path} is the official {is_what}, not {name}'s {path.name}. {_REPLACE}")
                if is_what is None and shape[0] == OFFICIAL_COUNTS[split] and path.name in official:
                    raise DataError(f"{path} has the size of the official {name} file but not its md5 "
                                    f"({md5} instead of {official[path.name]}): it is modified or corrupt. {_REPLACE}")
            if counts["images"] != counts["labels"]:
                raise DataError(f"{images} holds {counts['images']:,} images but {labels} {counts['labels']:,} "
                                f"labels: one of them belongs to another split or dataset. {_REPLACE}")
        if image_shapes["train"] != image_shapes["t10k"]:
            raise DataError(f"The training images in {self.raw_dir} are {list(image_shapes['train'])} but the test "
                            f"images {list(image_shapes['t10k'])}: both must come from one dataset. {_REPLACE}")

    def _check_labels(self, targets: torch.Tensor, train: bool) -> None:
        num_classes = len(self.dataset_cls.classes)
        bad = ((targets < 0) | (targets >= num_classes)).nonzero()
        if len(bad):
            path = self.raw_dir / f"{'train' if train else 't10k'}-labels-idx1-ubyte"
            i = int(bad[0])
            raise DataError(f"{path}: label {int(targets[i])} of item {i} (and {len(bad) - 1} more) is outside "
                            f"0..{num_classes - 1} ({self.dataset_cls.__name__} has {num_classes} classes). {_REPLACE}")

    def _load(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        if not all(f.is_file() for f in self._files(compressed=False)):
            raise DataNotFoundError(self._missing_help())
        if train:
            self.check_files()  # all four files, once per setup
        try:
            ds = self.dataset_cls(str(self.data_dir), train=train, download=False)
        except (RuntimeError, ValueError, EOFError, OSError) as err:  # a truncated file fails in a tensor view
            raise DataNotFoundError(
                f"Could not decode the {self.dataset_cls.__name__} files in {self.raw_dir} ({err}). They look "
                f"truncated or corrupt: move them away and run again to re-download or re-copy them."
            ) from err
        self._check_labels(ds.targets, train)
        return ds.data, ds.targets  # uint8 [N, H, W], int64 [N]

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        images, targets = self._load(train=True)
        if not 0 < self.val_size < len(targets):
            raise ConfigError(f"data.val_size={self.val_size}: must be between 1 and {len(targets) - 1} (the "
                              f"{self.dataset_cls.__name__} training set holds {len(targets):,} images; the rest "
                              f"trains): set a smaller data.val_size.")
        test = self._load(train=False)
        # The official MNIST and Fashion-MNIST files share no image between train and test (measured: 0 of
        # 10,000), so a single shared image means the files were replaced or mixed up.
        shared = shared_images(images, test[0])
        if shared:
            raise DataError(
                f"{shared:,} of the {len(test[0]):,} test images in {self.raw_dir / 't10k-images-idx3-ubyte'} also "
                f"appear in {self.raw_dir / 'train-images-idx3-ubyte'}: the model would be tested on images it "
                f"trained on. Zoo leaves them untouched: delete the decompressed files (or the whole {self.raw_dir} "
                f"folder) and run again to re-decompress, re-download or re-copy the official files."
            )
        order = torch.randperm(len(targets), generator=torch.Generator().manual_seed(self.split_seed))
        val, train = order[: self.val_size], order[self.val_size :]
        self.splits = {"train": (images[train], targets[train]), "val": (images[val], targets[val]), "test": test}

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.dataset_cls.classes)

    def facts(self) -> dict[str, int | str]:
        """Sizes read from the loaded data (after :meth:`setup`), for the model configs' ``${facts.<name>}``."""
        self.setup("fit")
        images, _ = self.splits["train"]  # uint8 [N, H, W]
        height, width = images.shape[1:]
        return {"task": self.task, "num_classes": len(self.class_names), "in_channels": 1, "height": height,
                "width": width, "num_features": height * width, "num_val": len(self.splits["val"][1])}

    def normalise(self, x: torch.Tensor, augment: bool = False) -> torch.Tensor:
        """uint8 ``[B, H, W]`` -> standardised float ``[B, 1, H, W]``, augmented first if ``augment``."""
        x = x.unsqueeze(1).float() / 255.0  # [B, 1, H, W] in [0, 1]
        if augment and self.augment is not None:
            x = self.augment(x)
        return (x - self.mean) / self.std

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
            transform=partial(self.normalise, augment=split == "train"),
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
