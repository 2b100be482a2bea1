"""Base DataModule for full-batch node classification: the whole graph is the one batch of every stage."""

import os
from pathlib import Path
from typing import ClassVar

import lightning as L
import torch
from torch.utils.data import DataLoader
from torch_geometric.data import Data

import zoo.checks as checks
from datamodules.splits import SPLITS, Masks, NodeSplit
from zoo.errors import ConfigError


def _identity(data: Data) -> Data:
    return data


def train_labels(data: Data) -> torch.Tensor:
    """``y`` on the training nodes, -1 on every other node: the only labels a model may read as input."""
    return torch.where(data.train_mask, data.y, torch.full_like(data.y, -1))


class GraphDataModule(L.LightningDataModule):
    """One PyG ``Data`` (with ``train_mask``/``val_mask``/``test_mask``) served as the single batch of each stage.

    Subclasses implement :meth:`read` (read or download the files) and, for features computed from the training
    labels, :meth:`add_label_features`; :meth:`load` puts the split masks between the two. The split is one
    :class:`~datamodules.splits.NodeSplit` (``data.split``, the config group ``data/split``); ``split_names`` lists
    the kinds a dataset offers (``public`` where its files carry a split). The graph moves to
    the training device once; every epoch then reuses it. Full-batch training runs on one device. The graph also carries ``y_train``
    (:func:`train_labels`): the training labels, -1 elsewhere, for models that read labels. ``graph_attributes``
    names what the graph carries beyond ``x``, ``y``, ``edge_index`` and the masks (e.g. ``edge_weight``); a
    network's ``needs`` must be among them (checked before a run, see ``zoo/registry.py``).

    Args:
        data_dir: Folder holding the dataset's folder.
        download: Fetch missing files from the public source.
        split: The node split, one of ``split_names`` (null: ``default_split`` with its defaults, seed 0).
    """

    kind: ClassVar[str] = "graph"
    task: ClassVar[str] = "zoo.tasks.NodeClassifier"
    graph_attributes: ClassVar[tuple[str, ...]] = ("y_train",)
    split_names: ClassVar[tuple[str, ...]] = ("random", "kfold", "per_class")
    default_split: ClassVar[str] = "random"

    def __init__(self, data_dir: str | os.PathLike = "data", download: bool = True,
                 split: NodeSplit | None = None) -> None:
        super().__init__()
        self.data_dir = Path(data_dir).expanduser()
        self.download = download
        if split is None:
            split = SPLITS[self.default_split]()
        *first, last = self.split_names
        choose = f"data/split={', '.join(first)} or {last}" if first else f"data/split={last}"
        if not isinstance(split, NodeSplit):
            raise ConfigError(f"split={checks.shown(split)}: must be a node split, chosen as {choose}")
        if split.name not in self.split_names:
            raise ConfigError(f"split={split.name}: must be one of {', '.join(self.split_names)} (this dataset has no "
                              f"{split.name} split): choose {choose}")
        self.split = split
        self.data: Data | None = None

    def read(self) -> Data:
        """The graph as stored (downloading/processing the files when needed), with its own masks if it has any."""
        raise NotImplementedError

    def split_masks(self, data: Data) -> Masks:
        """``(train, val, test)`` masks of the chosen split (``data``'s own masks for ``split=public``)."""
        public = tuple(data[f"{s}_mask"] for s in ("train", "val", "test")) if "train_mask" in data else None
        return self.split.masks(data.y, public)

    def add_label_features(self, data: Data) -> Data:
        """Features computed from the training labels (after the split): none by default."""
        return data

    def load(self) -> Data:
        """The graph with its split masks and the features that read the training labels."""
        data = self.read()
        data.train_mask, data.val_mask, data.test_mask = self.split_masks(data)
        return self.add_label_features(data)

    def prepare_data(self) -> None:
        if self.data is None:  # download and process once, on rank zero (the run builds the data before the Trainer)
            self.load()

    def setup(self, stage: str | None = None) -> None:
        if self.data is not None:
            return
        data = self.load()
        data.y_train = train_labels(data)
        self.data = data

    @property
    def class_names(self) -> tuple[str, ...]:
        self.setup("fit")
        return tuple(str(c) for c in range(int(self.data.y.max()) + 1))

    def facts(self) -> dict[str, int | str]:
        """Sizes read from the loaded graph, for the model configs' ``${facts.<name>}``."""
        self.setup("fit")
        return {"task": self.task, "num_classes": len(self.class_names), "num_features": self.data.num_node_features,
                "num_val": int(self.data.val_mask.sum())}

    def _loader(self) -> DataLoader:
        """A loader yielding the whole graph once per epoch (``batch_size=None``: no collation, no copy)."""
        device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        if self.data.x.device != device:  # move once: later epochs reuse the graph on the device
            self.data = self.data.to(device)
        return DataLoader([self.data], batch_size=None, collate_fn=_identity)

    def train_dataloader(self) -> DataLoader:
        return self._loader()

    def val_dataloader(self) -> DataLoader:
        return self._loader()

    def test_dataloader(self) -> DataLoader:
        return self._loader()

    def predict_dataloader(self) -> DataLoader:
        return self._loader()
