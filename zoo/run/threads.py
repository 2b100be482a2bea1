"""CPU threads of a run: the top-level ``threads`` key, applied before anything is built.

PyTorch starts one intra-op thread per core. On a machine whose cores other processes also use (a shared
box, parallel sweep jobs), every parallel operator then waits for a descheduled thread: on a shared 2-core
machine this made runs 4-9x slower than one thread (see benchmarks/README.md, "CPU threads").
"""

import logging
import os

import torch
from omegaconf import DictConfig

from zoo.errors import ConfigError

log = logging.getLogger(__name__)


def requested_threads(cfg: DictConfig) -> int | None:
    """The ``threads`` setting: an integer >= 1, or ``None`` for PyTorch's choice (``OMP_NUM_THREADS`` or one per core).

    Raises:
        ConfigError: ``threads`` is neither null nor an integer >= 1.
    """
    value = cfg.get("threads")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"threads={value!r}: must be an integer >= 1 (intra-op CPU threads per process), or null for "
            f"PyTorch's default of one per core ({os.cpu_count()} here)."
        )
    return value


def apply_threads(cfg: DictConfig) -> int:
    """Set PyTorch's intra-op thread count from ``cfg.threads``; return the count in use."""
    threads = requested_threads(cfg)
    if threads is not None and threads != torch.get_num_threads():
        torch.set_num_threads(threads)
        log.debug("torch.set_num_threads(%d)", threads)
    return torch.get_num_threads()
