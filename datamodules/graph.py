"""Base DataModule for full-batch node classification: the whole graph is the one batch of every stage."""

import os
from pathlib import Path
from typing import ClassVar

import lightning as L
import torch
from torch.utils.data import DataLoader
from torch_geometric.data import Data


def _identity(data: Data) -> Data:
    return data


def train_labels(data: Data) -> torch.Tensor:
    """``y`` on the training nodes, -1 on every other node: the only labels a model may read as input."""
    return torch.where(data.train_mask, data.y, torch.full_like(data.y, -1))


class GraphDataModule(L.LightningDataModule):
    """One PyG ``Data`` (with ``train_mask``/``val_mask``/``test_mask``) served as the single batch of each stage.

    Subclasses implement :meth:`load` (read or download the files, add the masks). The graph moves to the
    training device once; every epoch then reuses it. Full-batch training runs on one device. The graph also
    carries ``y_train`` (:func:`train_labels`): the training labels, -1 elsewhere, for models that read labels.
    ``graph_attributes`` names what the graph carries beyond ``x``, ``y``, ``edge_index`` and the masks (e.g.
    ``edge_weight``); a network's ``needs`` must be among them (checked before a run, see ``zoo/run/compatibility.py``).

    Args:
        data_dir: Folder holding the dataset's folder.
        download: Fetch missing files from the public source.
    """

    kind: ClassVar[str] = "graph"
    task: ClassVar[str] = "zoo.tasks.NodeClassifier"
    graph_attributes: ClassVar[tuple[str, ...]] = ("y_train",)

    def __init__(self, data_dir: str | os.PathLike = "data", download: bool = True) -> None:
        super().__init__()
        self.data_dir = Path(data_dir).expanduser()
        self.download = download
        self.data: Data | None = None

    def load(self) -> Data:
        """The graph with its split masks (downloading/processing the files when needed)."""
        raise NotImplementedError

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
        return {"task": self.task, "num_classes": len(self.class_names), "num_features": self.data.num_node_features}

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
