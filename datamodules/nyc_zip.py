"""NYC ZIP commuting graph: classify each ZIP code's borough from commuting flows and ZIP features."""

import os
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch_geometric.data import Data

from datamodules.files import open_cache
from datamodules.graph import GraphDataModule, train_labels
from datamodules.nyc_zip_dataset import BOROUGHS, NYCZipDataset
from datamodules.splits import NodeSplit
from zoo.errors import ConfigError, DataNotFoundError
from zoo.transforms.flow_shares import DIRECTIONS, NORMALIZATIONS, FlowShares


class NYCZipDataModule(GraphDataModule):
    """NYC ZIP graph (see :class:`~datamodules.nyc_zip_dataset.NYCZipDataset`) with seeded, class-stratified splits.

    The seed notebook trained on a random 80% of the ZIPs and validated on the rest; here a held-out test split is
    added (``data/split=random``: ``train_frac``/``val_frac``, the rest is test). ``data/split=kfold`` (repeated
    stratified k-fold) tests every ZIP once per repeat; ``label_rate`` keeps fewer training ZIPs (label scarcity);
    see :mod:`datamodules.splits`. The split's ``seed`` is the run's seed in the config, so a sweep over seeds also
    varies the split, and every model run with the same seed sees the same split. No public split.

    Node features ``x``: the 5 scaled ZIP features (``include_acs``); ``include_prior`` appends the one-hot ``initialFeat`` prior (the
    borough with the nearest centroid: geometry, not the label; 5 columns), ``missing_indicator`` appends 5 0/1 columns
    marking imputed values, ``flow_shares`` appends 5 flow shares per direction in ``flow_directions``: each ZIP's
    share of its flows to the TRAINING ZIPs of each borough (the :class:`~zoo.transforms.flow_shares.FlowShares`
    transform with those directions and ``flow_normalization``; computed from the training labels only, so no
    validation or test label enters the features). Models read the resulting width as ``${facts.num_features}``.

    Args:
        data_dir: Folder holding ``nyc_zip/raw/`` (files) and ``nyc_zip/processed/`` (cache).
        download: Fetch missing files from their pinned sources.
        split: The node split (:class:`~datamodules.splits.NodeSplit`; null: 60/20/20 random, seed 0).
        include_acs: Use the 5 scaled ZIP features (off: only the columns switched on below).
        include_prior: Append the one-hot prior borough guess to the features.
        missing_indicator: Append 5 0/1 columns marking imputed values.
        flow_shares: Append the flow shares to the training ZIPs of each borough (5 columns per direction).
        flow_directions: Operators of the flow shares, each of ``out`` (a work ZIP reads its workers' home ZIPs),
            ``in`` (a home ZIP reads its residents' work ZIPs) or ``symmetric``.
        flow_normalization: ``raw``, ``row`` or ``column`` (see :mod:`zoo.transforms.flow_shares`).
    """

    class_names: tuple[str, ...] = BOROUGHS
    graph_attributes: ClassVar[tuple[str, ...]] = ("y_train", "edge_weight", "initial_feat", "x_missing", "zip")

    def __init__(self, data_dir: str | os.PathLike = "data", download: bool = True, split: NodeSplit | None = None,
                 include_acs: bool = True, include_prior: bool = False, missing_indicator: bool = False,
                 flow_shares: bool = False, flow_directions: Sequence[str] = ("out", "in"),
                 flow_normalization: str = "column") -> None:
        super().__init__(data_dir, download, split)
        if not (include_acs or include_prior or missing_indicator or flow_shares):
            raise ValueError("NYCZipDataModule needs node features: set include_acs, include_prior or "
                             "flow_shares to true.")
        checks = [(f"data.flow_directions[{i}]", d, DIRECTIONS) for i, d in enumerate(flow_directions)]
        for key, value, choices in [*checks, ("data.flow_normalization", flow_normalization, NORMALIZATIONS)]:
            if value not in choices:
                raise ConfigError(f"{key}={value!r}: must be one of {', '.join(choices)}.")
        if flow_shares and not flow_directions:
            raise ConfigError("data.flow_directions=[]: flow_shares needs at least one direction (out, in, symmetric).")
        self.include_acs, self.include_prior, self.missing_indicator = include_acs, include_prior, missing_indicator
        self.flow_shares = flow_shares
        self.flow_directions, self.flow_normalization = tuple(flow_directions), flow_normalization
        self.flow_transform = FlowShares(len(BOROUGHS), self.flow_directions, flow_normalization) if flow_shares else None

    @property
    def root(self) -> Path:
        return self.data_dir / "nyc_zip"

    @property
    def shapefile(self) -> Path:
        """The NYC ZIP boundaries (for maps); may be absent."""
        return self.root / "raw" / "ZIP_CODE_040114.shp"

    def read(self) -> Data:
        try:
            data = open_cache(lambda reload: NYCZipDataset(self.root, download=self.download, force_reload=reload))[0]
        except PermissionError as err:
            raise DataNotFoundError(
                f"Cannot write the processed NYC ZIP graph under {self.root} ({err.filename}): it is read-only. Copy "
                f"the folder to a writable place and point data.data_dir (or ZOO_DATA_DIR) there."
            ) from err
        return data

    def add_label_features(self, data: Data) -> Data:
        """The node features ``x`` chosen by the ``include_*``/``flow_shares`` options (flow shares: training labels)."""
        parts = [data.x] if self.include_acs else []
        if self.include_prior:
            parts.append(F.one_hot(data.initial_feat, len(BOROUGHS)).float())
        if self.missing_indicator:
            parts.append(data.x_missing.float())
        data.x = torch.cat(parts, dim=1) if parts else None
        if self.flow_transform is not None:  # reads y_train: the training labels alone (held-out ZIPs are -1)
            data.y_train = train_labels(data)
            data = self.flow_transform(data)
        return data
