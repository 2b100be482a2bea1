"""Planetoid Cora (datamodules/cora.py) read from fake ``ind.cora.*`` files."""

import pytest
import torch

from datamodules.cora import CoraDataModule
from zoo.errors import DataNotFoundError


def test_cora_fake_loads_with_public_split(data_dir):
    data = CoraDataModule(data_dir, download=False).load()
    assert data.num_node_features == 1433 and int(data.y.max()) + 1 == 7
    assert int(data.train_mask.sum()) == 14 and int(data.val_mask.sum()) == 500 and int(data.test_mask.sum()) == 30
    torch.testing.assert_close(data.x.sum(1), torch.ones(data.num_nodes))  # NormalizeFeatures


def test_missing_cora_files_name_folder_and_fix(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"ind\.cora\.x.*data_dir"):
        CoraDataModule(tmp_path, download=False).load()
