"""Cora citation graph (Planetoid, public split)."""

import pickle

from torch_geometric.data import Data
from torch_geometric.datasets import Planetoid
from torch_geometric.transforms import NormalizeFeatures

from datamodules.graph import GraphDataModule
from zoo.errors import DataNotFoundError

CORA_FILES = [f"ind.cora.{n}" for n in ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")]


class CoraDataModule(GraphDataModule):
    """Cora: 2,708 papers, 1,433 bag-of-words features (row-normalised), 7 classes, public split 140/500/1000.

    Files: ``<data_dir>/Cora/raw/ind.cora.*`` (the Planetoid files, as PyG's ``Planetoid`` downloads them);
    the processed graph is cached in ``<data_dir>/Cora/processed/``.
    """

    def _missing_help(self) -> str:
        return (
            f"Cora files not found in {self.data_dir / 'Cora' / 'raw'} (expected {', '.join(CORA_FILES)}). Fix: run "
            f"once with internet access and data.download=true, or copy the Planetoid files into that folder, or "
            f"point data.data_dir (or the ZOO_DATA_DIR environment variable) at a writable folder that contains "
            f"Cora/raw/."
        )

    def load(self) -> Data:
        raw = self.data_dir / "Cora" / "raw"
        if not self.download and not all((raw / f).is_file() for f in CORA_FILES):
            raise DataNotFoundError(self._missing_help() + " Downloading is off (data.download=false).")
        try:
            dataset = Planetoid(str(self.data_dir), "Cora", split="public", transform=NormalizeFeatures())
        except PermissionError as err:
            raise DataNotFoundError(
                f"Cannot write the processed Cora graph under {self.data_dir / 'Cora'}: it is read-only. Copy the "
                f"folder to a writable place and point data.data_dir (or ZOO_DATA_DIR) there."
            ) from err
        except (OSError, EOFError, ValueError, RuntimeError, pickle.UnpicklingError) as err:  # offline, corrupt
            raise DataNotFoundError(f"{self._missing_help()} Loading failed: {err}") from err
        return dataset[0]
