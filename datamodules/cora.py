"""Cora citation graph (Planetoid; its public split, or any split of :mod:`datamodules.splits`; whole or its LCC)."""

import hashlib
import os
import pickle
from functools import cached_property
from pathlib import Path
from typing import ClassVar

import torch
from torch_geometric.data import Data
from torch_geometric.datasets import Planetoid
from torch_geometric.io.planetoid import read_file
from torch_geometric.transforms import Compose, LargestConnectedComponents, NormalizeFeatures

from datamodules.files import CheckedCache, content_key, open_cache
from datamodules.graph import GraphDataModule
from datamodules.splits import NodeSplit
from zoo.errors import ConfigError, DataError, DataNotFoundError

NAMES = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")
CORA_FILES = [f"ind.cora.{n}" for n in NAMES]
# sha256 of the official files (kimiyoung/planetoid, the files PyG downloads); see PROVENANCE.md of the offline copies.
CORA_SHA256: dict[str, str] = {
    "ind.cora.x": "23cfa55d91c6f624233f5eb7b6e3f141f1bd2b2ae39608a63cf5d084bb27baab",
    "ind.cora.tx": "b9afbaa4a400df991f6f02ef677e1e44da55ffc04801fd02f9e673987829226a",
    "ind.cora.allx": "9419ba2f26f5c35243db64aba110e0f35a04851609e0dc5433450676ca6b8543",
    "ind.cora.y": "94465c14eb53e04ca262198dcbb2521ee8af60fb3f3d546cd6ca24a511b0e7d1",
    "ind.cora.ty": "41f5ac76596a1699cc33f53084a2419e92961c42bb75f36fc38e616d348532ad",
    "ind.cora.ally": "2b998f5cc7fedc86e7f97ca2498f47a1ffc1462c29e2d578b23bf3f62b6e7d71",
    "ind.cora.graph": "58f13302f39dde8852dad6fe6d15b89b077b6d7f837626bce671ef80344b383d",
    "ind.cora.test.index": "297ce89af2b51a6a194181c7dbe1796c6a1cf9cd9349a88383b1b1e227867875",
}
# The 7 topics of Planetoid's Cora in label order (the one-hot columns of ind.cora.*y). NOT alphabetical: the
# official files hold 351, 217, 418, 818, 426, 298, 180 nodes of labels 0..6, and the LINQS cora.content (the same
# 2,708 papers) 351 Theory, 217 Reinforcement_Learning, 418 Genetic_Algorithms, 818 Neural_Networks,
# 426 Probabilistic_Methods, 298 Case_Based, 180 Rule_Learning papers: sizes that are all distinct.
CORA_CLASSES: tuple[str, ...] = ("Theory", "Reinforcement_Learning", "Genetic_Algorithms", "Neural_Networks",
                                 "Probabilistic_Methods", "Case_Based", "Rule_Learning")
_REPLACE = "Zoo leaves it untouched: replace the Cora/raw files with the official Planetoid files (move them away and run again to re-download)."


def check_planetoid_files(raw: Path) -> None:
    """Validate the Planetoid files before PyG reads them: each one readable and of its kind, shapes that agree.

    ``x``/``y`` (training rows), ``allx``/``ally`` and ``tx``/``ty`` pair up row for row, features share one width,
    labels are one-hot, ``test.index`` lists one index per ``tx`` row after the ``allx`` rows, ``graph`` is a dict
    with an entry for every node. A file whose content is another official Cora file's (swapped names) says so.

    Raises:
        DataError: Naming the file and what is wrong with it.
    """
    official = {digest: name for name, digest in CORA_SHA256.items()}
    items = {}
    for name in NAMES:
        path = raw / f"ind.cora.{name}"
        found = official.get(hashlib.sha256(path.read_bytes()).hexdigest())
        if found is not None and found != path.name:
            raise DataError(f"{path} holds the official {found}, not {path.name}: the files are swapped. {_REPLACE}")
        try:
            items[name] = read_file(str(raw), "cora", name)
        except Exception as err:  # noqa: BLE001 - any unreadable file gets the same message
            raise DataError(f"{path} cannot be read as Planetoid's ind.cora.{name} ({type(err).__name__}: {err}). "
                            f"{_REPLACE}") from err
        kind_ok = isinstance(items[name], dict) if name == "graph" else (
            isinstance(items[name], torch.Tensor) and items[name].dim() == (1 if name == "test.index" else 2))
        if not kind_ok:
            what = "a dict of adjacency lists" if name == "graph" else "a 1-d list of node indices" \
                if name == "test.index" else "a 2-d matrix"
            raise DataError(f"{path} holds a {type(items[name]).__name__}, not {what}. {_REPLACE}")

    def fail(name: str, problem: str) -> DataError:
        return DataError(f"{raw / f'ind.cora.{name}'}: {problem}. {_REPLACE}")

    x, tx, allx, y, ty, ally, graph, test_index = (items[n] for n in NAMES)
    for feats, labels in (("x", "y"), ("allx", "ally"), ("tx", "ty")):
        if len(items[feats]) != len(items[labels]):
            raise fail(labels, f"{len(items[labels])} label rows but ind.cora.{feats} has {len(items[feats])} rows")
    for name in ("tx", "allx"):
        if items[name].shape[1] != x.shape[1]:
            raise fail(name, f"{items[name].shape[1]} feature columns but ind.cora.x has {x.shape[1]}")
    for name in ("y", "ty", "ally"):
        labels = items[name]
        if labels.shape[1] != y.shape[1] or not (((labels == 0) | (labels == 1)).all() and (labels.sum(1) == 1).all()):
            raise fail(name, f"labels must be one-hot rows of width {y.shape[1]}")
    if len(allx) < len(x) + 500:
        raise fail("allx", f"{len(allx)} rows: the public split needs the {len(x)} training and 500 validation rows")
    n = len(allx) + len(tx)
    if len(test_index) != len(tx) or not ((test_index >= len(allx)) & (test_index < n)).all():
        raise fail("test.index", f"must list {len(tx)} node indices in {len(allx)}..{n - 1} (one per ind.cora.tx row)")
    if len(graph) != n or any(not 0 <= int(j) < n for nbrs in graph.values() for j in nbrs):
        raise fail("graph", f"must have an adjacency list for each of the {n} nodes, with indices in 0..{n - 1}")


class _KeyedPlanetoid(CheckedCache, Planetoid):
    """PyG's ``Planetoid`` whose processed file is named by a hash of the raw files: edited raw files are re-read.

    A processed file that cannot be loaded raises :class:`~datamodules.files.CorruptCacheError` (rebuilt by
    :func:`~datamodules.files.open_cache`)."""

    @cached_property
    def _raw_key(self) -> str:
        return content_key(Path(p) for p in self.raw_paths)

    @property
    def processed_file_names(self) -> str:
        return f"data_{self._raw_key}.pt"


class CoraDataModule(GraphDataModule):
    """Cora: 2,708 papers, 1,433 bag-of-words features (row-normalised), 7 topics, public split 140/500/1000.

    ``lcc=True`` keeps the largest connected component only (PyG's ``LargestConnectedComponents``; 2,485 papers
    on the official files), as Shchur et al. (2018) evaluate; the public masks are cut to it. The component is
    taken when the graph is loaded, after the processed cache: the cache always holds the whole graph, so a cache
    is never read for the other choice.

    Files: ``<data_dir>/Cora/raw/ind.cora.*`` (the Planetoid files, as PyG's ``Planetoid`` downloads them);
    the processed graph is cached in ``<data_dir>/Cora/processed/``. ``data/split=public`` (default) keeps the
    files' split; ``per_class`` draws the random splits of Shchur et al. (20 training and 30 validation nodes per
    class, the rest test; see :mod:`datamodules.splits`). ``class_names`` are the topics of :data:`CORA_CLASSES`.
    """

    split_names: ClassVar[tuple[str, ...]] = ("public", "random", "kfold", "per_class")
    default_split: ClassVar[str] = "public"

    def __init__(self, data_dir: str | os.PathLike = "data", download: bool = True, split: NodeSplit | None = None,
                 lcc: bool = False) -> None:
        """Args: those of :class:`~datamodules.graph.GraphDataModule`, and ``lcc``: keep the largest connected
        component only."""
        if not isinstance(lcc, bool):
            raise ConfigError(f"data.lcc={lcc!r}: must be true (the largest connected component) or false.")
        super().__init__(data_dir, download, split)
        self.lcc = lcc

    @property
    def class_names(self) -> tuple[str, ...]:
        """The topics of :data:`CORA_CLASSES`; label numbers for Planetoid-format files with another class count."""
        numbers = super().class_names
        return CORA_CLASSES if len(numbers) == len(CORA_CLASSES) else numbers

    def _missing_help(self) -> str:
        return (
            f"Cora files not found in {self.data_dir / 'Cora' / 'raw'} (expected {', '.join(CORA_FILES)}). Fix: run "
            f"once with internet access and data.download=true, or copy the Planetoid files into that folder, or "
            f"point data.data_dir (or the ZOO_DATA_DIR environment variable) at a writable folder that contains "
            f"Cora/raw/."
        )

    def read(self) -> Data:
        """The Planetoid graph (its largest connected component with ``lcc``) with its public split masks."""
        raw = self.data_dir / "Cora" / "raw"
        if not self.download and not all((raw / f).is_file() for f in CORA_FILES):
            raise DataNotFoundError(self._missing_help() + " Downloading is off (data.download=false).")
        if all((raw / f).is_file() for f in CORA_FILES):
            check_planetoid_files(raw)
        transform = Compose([LargestConnectedComponents(), NormalizeFeatures()]) if self.lcc else NormalizeFeatures()
        try:
            dataset = open_cache(lambda reload: _KeyedPlanetoid(str(self.data_dir), "Cora", split="public",
                                                                transform=transform, force_reload=reload))
        except PermissionError as err:
            raise DataNotFoundError(
                f"Cannot write the processed Cora graph under {self.data_dir / 'Cora'}: it is read-only. Copy the "
                f"folder to a writable place and point data.data_dir (or ZOO_DATA_DIR) there."
            ) from err
        except (OSError, EOFError, ValueError, RuntimeError, pickle.UnpicklingError) as err:  # offline, corrupt
            if all((raw / f).is_file() for f in CORA_FILES):  # the files are there: say what went wrong with them
                raise DataError(f"The Cora files in {raw} could not be processed ({type(err).__name__}: {err}). "
                                f"{_REPLACE}") from err
            raise DataNotFoundError(f"{self._missing_help()} Loading failed: {err}") from err
        return dataset[0]
