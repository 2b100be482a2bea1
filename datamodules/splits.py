"""Train/validation/test node splits of a labelled graph, and the one place a graph DataModule picks its split.

The functions take a label vector ``y`` (one class per node) and return boolean masks ``(train, val, test)`` of
the same length; no node is in two masks. All are seeded and class-stratified:

* :func:`random_split_masks`: a fraction of each class for training, one for validation, the rest test;
* :func:`stratified_kfold_masks`: repeated stratified k-fold; test fold ``k``, validation fold ``(k + 1) % folds``,
  the other folds train; over ``k = 0..folds-1`` every node is tested exactly once per repeat;
* :func:`per_class_masks`: a fixed number of training and validation nodes per class, the rest test (the random
  splits of Shchur et al., "Pitfalls of Graph Neural Network Evaluation", 2018: 20 and 30);
* :func:`labelled_subset`: label scarcity, a nested seeded subset of the training nodes of any split (validation
  and test unchanged; the dropped nodes are unlabelled: in no mask).

:class:`SplitOptions` holds a DataModule's ``data.*`` split keys, refuses bad combinations when the DataModule is
built, and makes the masks when the graph is loaded.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

import zoo.checks as checks
from zoo.errors import ConfigError

Masks = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
Seed = int | Sequence[int]

# Split names (the value of ``data.split``); "public" is a dataset's own split (Planetoid's), where it has one.
SPLITS: tuple[str, ...] = ("public", "random", "kfold", "per_class")
# Defaults of the random split (60/20/20) and of the k-fold and per-class splits when their keys are null.
TRAIN_FRAC, VAL_FRAC = 0.6, 0.2
FOLDS = 5
TRAIN_PER_CLASS, VAL_PER_CLASS = 20, 30  # Shchur et al. (2018)
# Keys that only one split reads: given with another split, they would be silently ignored.
SPLIT_KEYS: dict[str, tuple[str, ...]] = {"kfold": ("folds", "fold", "repeat"),
                                          "per_class": ("train_per_class", "val_per_class")}
_SUBSET_STREAM = 1  # seeds the labelled subset apart from the split's own shuffling


def _classes(y: torch.Tensor) -> tuple[np.ndarray, list[np.ndarray]]:
    """Labels as numpy, and the node indices of each class (classes in increasing order)."""
    if y.dim() != 1:
        raise ValueError(f"y must be one label per node (1-d), got shape {tuple(y.shape)}.")
    labels = y.cpu().numpy()
    return labels, [np.flatnonzero(labels == c) for c in np.unique(labels)]


def _mask_of(y: torch.Tensor, idx: Sequence[np.ndarray]) -> torch.Tensor:
    """Boolean mask over ``y``'s nodes, true at the indices of every array in ``idx``."""
    mask = torch.zeros(len(y), dtype=torch.bool, device=y.device)
    mask[torch.as_tensor(np.concatenate([np.zeros(0, np.int64), *(np.asarray(i, np.int64) for i in idx)]), device=y.device)] = True
    return mask


def _check_fracs(train_frac: float, val_frac: float) -> None:
    if not (0 < train_frac < 1 and 0 <= val_frac < 1 and train_frac + val_frac < 1):
        raise ConfigError(f"data.train_frac={train_frac}, data.val_frac={val_frac}: need 0 < train_frac, 0 <= val_frac "
                          f"and train_frac + val_frac < 1 (the rest is the test split): lower one of them.")


def random_split_masks(y: torch.Tensor, train_frac: float, val_frac: float, seed: int) -> Masks:
    """Seeded per-class split of the nodes into train/val/test boolean masks (the rest of each class is test).

    Each class (in increasing order) is shuffled by one ``torch.Generator`` seeded with ``seed``;
    ``max(1, round(train_frac * n))`` of its ``n`` nodes train, ``round(val_frac * n)`` validate.
    """
    _check_fracs(train_frac, val_frac)
    g = torch.Generator().manual_seed(seed)
    masks = [torch.zeros_like(y, dtype=torch.bool) for _ in range(3)]
    for c in y.unique():
        idx = (y == c).nonzero().view(-1)
        idx = idx[torch.randperm(len(idx), generator=g)]
        n_train = max(1, round(train_frac * len(idx)))
        n_val = round(val_frac * len(idx))
        for mask, part in zip(masks, (idx[:n_train], idx[n_train:n_train + n_val], idx[n_train + n_val:]), strict=True):
            mask[part] = True
    for name, mask in zip(("train", "val", "test"), masks, strict=True):
        if not mask.any() and (name != "val" or val_frac > 0):
            raise ConfigError(f"data.train_frac={train_frac}, data.val_frac={val_frac} leave the {name} split empty "
                              f"({len(y)} nodes): choose fractions that leave every split some nodes.")
    return masks[0], masks[1], masks[2]


def _check_kfold(folds: int, fold: int, repeat: int) -> None:
    for key, value in (("folds", folds), ("fold", fold), ("repeat", repeat)):
        if not isinstance(value, int | np.integer) or isinstance(value, bool):
            raise ConfigError(f"data.{key}={value!r}: must be an integer.")
    if folds < 3:
        raise ConfigError(f"data.folds={folds}: k-fold needs at least 3 folds (a test fold, a validation fold and "
                          f"training folds): use data.folds=5.")
    if not 0 <= fold < folds:
        raise ConfigError(f"data.fold={fold}: must be in 0..{folds - 1} (data.folds={folds}).")
    if repeat < 0:
        raise ConfigError(f"data.repeat={repeat}: must be >= 0.")


def kfold_assignment(y: torch.Tensor, folds: int, repeat: int, seed: int) -> torch.Tensor:
    """The fold (``0..folds-1``) of every node in repeat ``repeat``: a stratified partition seeded by (seed, repeat).

    Each class's nodes are shuffled (``numpy.random.default_rng([seed, repeat])``), the classes are laid end to end
    and the nodes are dealt round-robin to the folds; so every class has ``n // folds`` or ``n // folds + 1`` nodes
    in each fold, and the folds' sizes differ by at most one.
    """
    _check_kfold(folds, 0, repeat)
    labels, members = _classes(y)
    for idx in members:
        if len(idx) < folds:
            fix = f"use data.folds={len(idx)} or fewer" if len(idx) >= 3 else "k-fold needs at least 3 per class"
            raise ConfigError(f"class {labels[idx[0]]} has {len(idx)} nodes, fewer than data.folds={folds}: some folds "
                              f"would hold none of it; {fix}, or use data.split=random.")
    rng = np.random.default_rng([seed, repeat])
    order = np.concatenate([rng.permutation(idx) for idx in members])
    assignment = np.empty(len(labels), dtype=np.int64)
    assignment[order] = np.arange(len(order)) % folds
    return torch.as_tensor(assignment, device=y.device)


def stratified_kfold_masks(y: torch.Tensor, folds: int, fold: int, repeat: int, seed: int) -> Masks:
    """Masks of fold ``fold`` of repeat ``repeat``: test fold ``fold``, validation fold ``(fold + 1) % folds``, the
    other ``folds - 2`` folds train (60/20/20 for 5 folds). Repeats are independent partitions (see
    :func:`kfold_assignment`); within a repeat every node is tested in exactly one fold.
    """
    _check_kfold(folds, fold, repeat)
    assignment = kfold_assignment(y, folds, repeat, seed)
    test, val = assignment == fold, assignment == (fold + 1) % folds
    return ~(test | val), val, test


def _check_per_class(train_per_class: int, val_per_class: int) -> None:
    for key, value, low in (("train_per_class", train_per_class, 1), ("val_per_class", val_per_class, 0)):
        if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < low:
            raise ConfigError(f"data.{key}={value!r}: must be an integer >= {low}.")


def per_class_masks(y: torch.Tensor, train_per_class: int, val_per_class: int, seed: int) -> Masks:
    """``train_per_class`` training and ``val_per_class`` validation nodes drawn from each class, the rest test.

    The random splits of Shchur et al. (2018) with 20 and 30; each class is shuffled by
    ``numpy.random.default_rng(seed)`` in increasing class order.
    """
    _check_per_class(train_per_class, val_per_class)
    labels, members = _classes(y)
    need = train_per_class + val_per_class
    for idx in members:
        if len(idx) <= need:
            raise ConfigError(f"class {labels[idx[0]]} has {len(idx)} nodes: data.train_per_class={train_per_class} + "
                              f"data.val_per_class={val_per_class} leave none of it to test. Lower them (their sum "
                              f"below {len(idx)}) or use data.split=random.")
    rng = np.random.default_rng(seed)
    shuffled = [rng.permutation(idx) for idx in members]
    return (_mask_of(y, [s[:train_per_class] for s in shuffled]), _mask_of(y, [s[train_per_class:need] for s in shuffled]),
            _mask_of(y, [s[need:] for s in shuffled]))


def rate_counts(y: torch.Tensor, train: torch.Tensor, label_rate: float) -> dict[int, int]:
    """Training nodes to keep per class at ``label_rate`` of each class's nodes: ``max(1, round(label_rate * n))``,
    at most the class's training nodes (a rate equal to the split's training share keeps them all)."""
    labels, members = _classes(y)
    pool = train.cpu().numpy()
    return {int(labels[idx[0]]): min(int(pool[idx].sum()), max(1, round(label_rate * len(idx)))) for idx in members}


def labelled_subset(y: torch.Tensor, train: torch.Tensor, counts: int | dict[int, int], seed: Seed) -> torch.Tensor:
    """A seeded subset of the ``train`` mask with ``counts`` nodes of each class (an int: the same for every class).

    Each class's training nodes are shuffled (``numpy.random.default_rng(seed)``) and the first ``counts[c]`` kept,
    so for one seed and one split a smaller subset is always inside a larger one (nested label-scarcity curves).
    """
    labels, members = _classes(y)
    pool = train.cpu().numpy()
    rng = np.random.default_rng(seed)
    keep = []
    for idx in members:
        c = int(labels[idx[0]])
        n = counts if isinstance(counts, int) else counts[c]
        candidates = idx[pool[idx]]
        if n > len(candidates):
            fix = f"give at most {len(candidates)}, or" if len(candidates) else "use"
            raise ConfigError(f"class {c} has {len(candidates)} training nodes in this split, fewer than the {n} "
                              f"labelled nodes per class asked for (data.labels_per_class): {fix} a split with more "
                              f"training nodes of every class (data.split=per_class, kfold or random).")
        keep.append(rng.permutation(candidates)[:n])
    return _mask_of(y, keep)


@dataclass(frozen=True)
class SplitOptions:
    """The split keys of a graph DataModule (``data.split`` and the keys it reads), checked together.

    ``split``: ``public`` (the dataset's own masks), ``random`` (``train_frac``/``val_frac`` of each class, seeded by
    ``split_seed``), ``kfold`` (``folds``, ``fold``, ``repeat``; null: 5, 0, 0; partition seeded by
    ``(split_seed, repeat)``) or ``per_class`` (``train_per_class``/``val_per_class``; null: 20, 30). Label scarcity,
    for any split: ``label_rate`` (a fraction of each class's nodes, ``random``/``kfold`` only; at the split's
    :attr:`train_share` every training node) or ``labels_per_class`` keeps a nested seeded subset of the training
    nodes; validation and test are unchanged.
    """

    split: str = "random"
    split_seed: int = 0
    train_frac: float = TRAIN_FRAC
    val_frac: float = VAL_FRAC
    folds: int | None = None
    fold: int | None = None
    repeat: int | None = None
    train_per_class: int | None = None
    val_per_class: int | None = None
    label_rate: float | None = None
    labels_per_class: int | None = None

    def check(self, allowed: Sequence[str]) -> None:
        """Refuse an unknown split, a key the split does not read, and out-of-range values (one line each).

        Whether ``train_frac``/``val_frac`` leave every class's split some nodes is checked when the masks are made.

        Raises:
            ConfigError: Naming the key, its value and the allowed values.
        """
        if self.split not in allowed:
            raise ConfigError(f"data.split={self.split!r}: must be one of {', '.join(allowed)}.")
        checks.seed("data.split_seed", self.split_seed)
        checks.number("data.train_frac", self.train_frac, 0, 1, open_low=True, open_high=True)
        checks.number("data.val_frac", self.val_frac, 0, 1, open_high=True)
        if self.split == "random":
            _check_fracs(self.train_frac, self.val_frac)
        for split, keys in SPLIT_KEYS.items():
            given = [k for k in keys if getattr(self, k) is not None]
            if split != self.split and given:
                raise ConfigError(f"data.{given[0]}={getattr(self, given[0])}: read by data.split={split} only, but "
                                  f"data.split={self.split}: set data.split={split} or leave data.{given[0]} null.")
        if self.split != "random" and (self.train_frac, self.val_frac) != (TRAIN_FRAC, VAL_FRAC):
            raise ConfigError(f"data.train_frac={self.train_frac}, data.val_frac={self.val_frac}: read by data.split="
                              f"random only, but data.split={self.split}: set data.split=random or leave them at "
                              f"{TRAIN_FRAC} and {VAL_FRAC}.")
        if self.split == "kfold":
            _check_kfold(self.n_folds, self.fold or 0, self.repeat or 0)
        if self.split == "per_class":  # the class sizes are checked when the graph is loaded
            _check_per_class(self.n_train_per_class, self.n_val_per_class)
        self._check_scarcity()

    def _check_scarcity(self) -> None:
        if self.label_rate is not None and self.labels_per_class is not None:
            raise ConfigError(f"data.label_rate={self.label_rate} and data.labels_per_class={self.labels_per_class}: "
                              f"give one of them (the other null).")
        if self.labels_per_class is not None and (not isinstance(self.labels_per_class, int | np.integer)
                                                  or isinstance(self.labels_per_class, bool)
                                                  or self.labels_per_class < 1):
            raise ConfigError(f"data.labels_per_class={self.labels_per_class!r}: must be an integer >= 1 (or null: "
                              f"every training node).")
        if self.label_rate is None:
            return
        if not isinstance(self.label_rate, int | float) or isinstance(self.label_rate, bool):
            raise ConfigError(f"data.label_rate={self.label_rate!r}: must be a number (a fraction of each class).")
        if self.split not in ("random", "kfold"):
            raise ConfigError(f"data.label_rate={self.label_rate}: a fraction of each class, for data.split=random or "
                              f"kfold; with data.split={self.split} give data.labels_per_class instead.")
        if not 0 < self.label_rate <= self.train_share + 1e-9:
            raise ConfigError(f"data.label_rate={self.label_rate}: must be in (0, {self.train_share:.3g}], the "
                              f"training share of data.split={self.split} (or null: every training node).")

    @property
    def train_share(self) -> float:
        """The nominal training fraction of ``random`` (``train_frac``) and ``kfold`` (``(folds - 2) / folds``)."""
        return self.train_frac if self.split == "random" else (self.n_folds - 2) / self.n_folds

    @property
    def n_folds(self) -> int:
        """``folds``, or its default when null (likewise below)."""
        return FOLDS if self.folds is None else self.folds

    @property
    def n_train_per_class(self) -> int:
        return TRAIN_PER_CLASS if self.train_per_class is None else self.train_per_class

    @property
    def n_val_per_class(self) -> int:
        return VAL_PER_CLASS if self.val_per_class is None else self.val_per_class

    def masks(self, y: torch.Tensor, public: Masks | None = None) -> Masks:
        """The masks of this split for labels ``y``; ``public``: the dataset's own masks (``split=public``).

        Raises:
            ConfigError: The split does not fit the data (a class too small; no public split).
        """
        if self.split == "public":
            if public is None:
                raise ConfigError("data.split=public: this dataset has no public split; use data.split=random or "
                                  "kfold.")
            train, val, test = public
        elif self.split == "random":
            train, val, test = random_split_masks(y, self.train_frac, self.val_frac, self.split_seed)
        elif self.split == "kfold":
            train, val, test = stratified_kfold_masks(y, self.n_folds, self.fold or 0, self.repeat or 0,
                                                      self.split_seed)
        elif self.split == "per_class":
            train, val, test = per_class_masks(y, self.n_train_per_class, self.n_val_per_class, self.split_seed)
        else:
            raise ConfigError(f"data.split={self.split!r}: must be one of {', '.join(SPLITS)}.")
        counts = self.labels_per_class
        if self.label_rate is not None and self.label_rate < self.train_share - 1e-9:  # at the share: all of them
            counts = rate_counts(y, train, self.label_rate)
        if counts is not None:
            seed = [self.split_seed, _SUBSET_STREAM, self.repeat or 0, self.fold or 0]
            train = labelled_subset(y, train, counts, seed)
        return train, val, test
