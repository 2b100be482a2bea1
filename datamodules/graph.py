"""Base DataModule for full-batch node classification: the whole graph is the one batch of every stage."""

import os
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader
from torch_geometric.data import Data

from zoo.errors import ConfigError


def _identity(data: Data) -> Data:
    return data


class GraphDataModule(L.LightningDataModule):
    """One PyG ``Data`` (with ``train_mask``/``val_mask``/``test_mask``) served as the single batch of each stage.

    Subclasses implement :meth:`load` (read or download the files, add the masks). The graph moves to the
    training device once; every epoch then reuses it. Full-batch training runs on one device.

    Args:
        data_dir: Folder holding the dataset's folder.
        download: Fetch missing files from the public source.
        num_features: Node feature width the model configs were built for (checked against the data).
        num_classes: Number of classes the model configs were built for (checked against the data).
    """

    def __init__(self, data_dir: str | os.PathLike = "data", download: bool = True, num_features: int | None = None,
                 num_classes: int | None = None, **facts: object) -> None:
        super().__init__()
        # `facts` are the config's other dataset facts (kind, task, ...) read by the model configs.
        self.data_dir = Path(data_dir).expanduser()
        self.download = download
        self.num_features, self.num_classes = num_features, num_classes
        self.data: Data | None = None

    def load(self) -> Data:
        """The graph with its split masks (downloading/processing the files when needed)."""
        raise NotImplementedError

    def prepare_data(self) -> None:
        self.load()  # download and process once, on rank zero

    def setup(self, stage: str | None = None) -> None:
        if self.data is not None:
            return
        data = self.load()
        for name, expected, actual in (("num_features", self.num_features, data.num_node_features),
                                       ("num_classes", self.num_classes, int(data.y.max()) + 1)):
            if expected is not None and expected != actual:
                raise ConfigError(
                    f"data.{name}={expected}, but the {type(self).__name__} graph has {actual}: set data.{name}="
                    f"{actual} (the model configs read it), or change the data options that set the width."
                )
        self.data = data

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
