"""Tiny datasets written in the real on-disk formats, so the real loading code runs in tests."""

import gzip
import struct
from pathlib import Path

import numpy as np

from tests.graph_fakes import write_fake_graphs

# Per class, a bright square at its own place: learnable, but not trivially by one pixel.
_IMAGE_SHAPE = (28, 28)


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array in the IDX format (the MNIST file format)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def fake_images(n: int, num_classes: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy 28x28 uint8 images whose class is a bright 6x6 square at a class-specific place."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, size=n).astype(np.uint8)
    images = rng.integers(0, 60, size=(n, *_IMAGE_SHAPE)).astype(np.uint8)
    for i, c in enumerate(labels):
        r, col = 1 + 7 * (int(c) // 4), 1 + 6 * (int(c) % 4)
        images[i, r : r + 6, col : col + 6] = rng.integers(180, 255, size=(6, 6))
    return images, labels


def write_idx_dataset(root: Path, name: str, n_train: int = 600, n_test: int = 200, compress: bool = False) -> Path:
    """Write ``root/<name>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``; returns the raw folder."""
    raw = Path(root) / name / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 1), ("t10k", n_test, 2)):
        images, labels = fake_images(n, seed=seed)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            path = raw / f"{prefix}-{kind}-ubyte"
            data = idx_bytes(array)
            if compress:
                path.with_name(path.name + ".gz").write_bytes(gzip.compress(data))
            else:
                path.write_bytes(data)
    return raw


def write_fake_data(root: Path) -> Path:
    """Every dataset of the zoo, tiny, under ``root`` (the layout of ``data.data_dir``)."""
    for name in ("MNIST", "FashionMNIST"):
        write_idx_dataset(root, name)
    write_fake_graphs(root)  # Cora + NYC ZIP (tests/graph_fakes.py)
    return root
