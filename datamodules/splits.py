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

A graph DataModule takes one :class:`NodeSplit` (``data.split``, a Hydra config group: ``data/split=kfold``), one
class per kind: :class:`PublicSplit`, :class:`RandomSplit`, :class:`KFoldSplit`, :class:`PerClassSplit`. Each takes
only its own keys and checks them when built; its :meth:`~NodeSplit.masks` makes the masks when the graph is loaded.
"""

import inspect
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch

import zoo.checks as checks
from zoo.errors import ConfigError

Masks = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
Seed = int | Sequence[int]

# Defaults of the random split (60/20/20), the k-fold split and the per-class split.
TRAIN_FRAC, VAL_FRAC = 0.6, 0.2
FOLDS = 5
TRAIN_PER_CLASS, VAL_PER_CLASS = 20, 30  # Shchur et al. (2018)
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
    checks.number("train_frac", train_frac, 0, 1, open_low=True, open_high=True)
    checks.number("val_frac", val_frac, 0, 1, open_high=True)
    if not train_frac + val_frac < 1:
        raise ValueError(f"train_frac={train_frac}: must be < 1 - val_frac = {1 - val_frac:g} (val_frac={val_frac}; "
                         f"the rest is the test split): lower one of them")


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
            raise ConfigError(f"data.split.train_frac={train_frac}, data.split.val_frac={val_frac} leave the {name} "
                              f"split empty ({len(y)} nodes): choose fractions that leave every split some nodes.")
    return masks[0], masks[1], masks[2]


def _check_kfold(folds: int, fold: int, repeat: int) -> None:
    checks.integer("folds", folds, 3, " (a test fold, a validation fold and training folds; e.g. 5)")
    if not checks.is_integer(fold) or not 0 <= fold < folds:
        raise ValueError(f"fold={checks.shown(fold)}: must be an integer in 0..{folds - 1} (folds={folds})")
    checks.integer("repeat", repeat, 0)


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
            fix = f"use data.split.folds={len(idx)} or fewer" if len(idx) >= 3 else "k-fold needs at least 3 per class"
            raise ConfigError(f"class {labels[idx[0]]} has {len(idx)} nodes, fewer than data.split.folds={folds}: some "
                              f"folds would hold none of it; {fix}, or use data/split=random.")
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
    checks.integer("train_per_class", train_per_class, 1)
    checks.integer("val_per_class", val_per_class, 0)


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
            raise ConfigError(f"class {labels[idx[0]]} has {len(idx)} nodes: data.split.train_per_class="
                              f"{train_per_class} + data.split.val_per_class={val_per_class} leave none of it to "
                              f"test. Lower them (their sum below {len(idx)}) or use data/split=random.")
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
                              f"labelled nodes per class asked for (data.split.labels_per_class): {fix} a split with "
                              f"more training nodes of every class (data/split=per_class, kfold or random).")
        keep.append(rng.permutation(candidates)[:n])
    return _mask_of(y, keep)



class NodeSplit:
    """A node split of a labelled graph (``data.split``), with optional label scarcity.

    Subclasses make the split (:meth:`split_masks`); ``label_rate`` (a share of each class's nodes, for splits with a
    :attr:`train_share`; at that share every training node) or ``labels_per_class`` keeps a nested seeded subset of
    its training nodes; validation and test are unchanged.

    Args:
        seed: Seed of the split and of the labelled subset.
        label_rate: Keep ``max(1, round(label_rate * n))`` training nodes of each class of ``n`` nodes (null: all).
        labels_per_class: Keep this many training nodes per class (null: all).
    """

    name: ClassVar[str] = ""

    def __init__(self, seed: int = 0, label_rate: float | None = None, labels_per_class: int | None = None) -> None:
        self.seed = checks.seed("seed", seed)
        if label_rate is not None and labels_per_class is not None:
            raise ValueError(f"label_rate={checks.shown(label_rate)}: must be null when labels_per_class="
                             f"{checks.shown(labels_per_class)} is given (give one of them)")
        if labels_per_class is not None:
            checks.integer("labels_per_class", labels_per_class, 1, " (or null: every training node)")
        if label_rate is not None:
            share = self.train_share
            if share is None:
                raise ValueError(f"label_rate={checks.shown(label_rate)}: must be null for the {self.name} split (it "
                                 f"has no training share); give labels_per_class instead")
            if not checks.is_number(label_rate) or not 0 < label_rate <= share + 1e-9:
                raise ValueError(f"label_rate={checks.shown(label_rate)}: must be in (0, {share:.3g}], the training "
                                 f"share of the {self.name} split (or null: every training node)")
        self.label_rate, self.labels_per_class = label_rate, labels_per_class

    @property
    def train_share(self) -> float | None:
        """The nominal training share of each class, which ``label_rate`` may not exceed (None: no share)."""
        return None

    def split_masks(self, y: torch.Tensor, public: Masks | None = None) -> Masks:
        """The split's masks before label scarcity."""
        raise NotImplementedError

    def masks(self, y: torch.Tensor, public: Masks | None = None) -> Masks:
        """The masks ``(train, val, test)`` for labels ``y``; ``public``: the dataset's own masks, if it has any.

        Raises:
            ConfigError: The split does not fit the data (a class too small; no public split).
        """
        train, val, test = self.split_masks(y, public)
        counts = self.labels_per_class
        if self.label_rate is not None and self.label_rate < self.train_share - 1e-9:  # at the share: all of them
            counts = rate_counts(y, train, self.label_rate)
        if counts is not None:
            train = labelled_subset(y, train, counts, [self.seed, _SUBSET_STREAM, *self._subset_stream])
        return train, val, test

    @property
    def _subset_stream(self) -> tuple[int, int]:
        """``(repeat, fold)``: with the seed, they seed the labelled subset."""
        return 0, 0

    def __repr__(self) -> str:
        keys = inspect.signature(type(self)).parameters
        return f"{type(self).__name__}({', '.join(f'{k}={getattr(self, k)!r}' for k in keys)})"


class PublicSplit(NodeSplit):
    """The dataset's own split (Planetoid's public masks), the same in every run; ``seed`` seeds label scarcity only.

    Args: those of :class:`NodeSplit` (``label_rate`` must stay null: give ``labels_per_class``).
    """

    name: ClassVar[str] = "public"

    def split_masks(self, y: torch.Tensor, public: Masks | None = None) -> Masks:
        if public is None:
            raise ConfigError("data/split=public: this dataset has no public split; use data/split=random or kfold.")
        return public


class RandomSplit(NodeSplit):
    """A seeded class-stratified split: ``train_frac`` and ``val_frac`` of each class, the rest test
    (:func:`random_split_masks`).

    Args:
        train_frac: Share of each class for training.
        val_frac: Share for validation (``train_frac + val_frac < 1``).
        seed, label_rate, labels_per_class: See :class:`NodeSplit`.
    """

    name: ClassVar[str] = "random"

    def __init__(self, train_frac: float = TRAIN_FRAC, val_frac: float = VAL_FRAC, seed: int = 0,
                 label_rate: float | None = None, labels_per_class: int | None = None) -> None:
        _check_fracs(train_frac, val_frac)
        self.train_frac, self.val_frac = train_frac, val_frac
        super().__init__(seed, label_rate, labels_per_class)

    @property
    def train_share(self) -> float:
        return self.train_frac

    def split_masks(self, y: torch.Tensor, public: Masks | None = None) -> Masks:
        return random_split_masks(y, self.train_frac, self.val_frac, self.seed)


class KFoldSplit(NodeSplit):
    """Repeated stratified k-fold: test fold ``fold``, validation fold ``fold + 1``, the other folds train; each
    repeat a partition of its own, seeded by ``(seed, repeat)`` (:func:`stratified_kfold_masks`).

    Args:
        folds: Number of folds (at least 3).
        fold: The test fold, ``0..folds-1``.
        repeat: Which repeat (``>= 0``).
        seed, label_rate, labels_per_class: See :class:`NodeSplit`.
    """

    name: ClassVar[str] = "kfold"

    def __init__(self, folds: int = FOLDS, fold: int = 0, repeat: int = 0, seed: int = 0,
                 label_rate: float | None = None, labels_per_class: int | None = None) -> None:
        _check_kfold(folds, fold, repeat)
        self.folds, self.fold, self.repeat = folds, fold, repeat
        super().__init__(seed, label_rate, labels_per_class)

    @property
    def train_share(self) -> float:
        return (self.folds - 2) / self.folds

    @property
    def _subset_stream(self) -> tuple[int, int]:
        return self.repeat, self.fold

    def split_masks(self, y: torch.Tensor, public: Masks | None = None) -> Masks:
        return stratified_kfold_masks(y, self.folds, self.fold, self.repeat, self.seed)


class PerClassSplit(NodeSplit):
    """``train_per_class`` training and ``val_per_class`` validation nodes of each class, the rest test: the random
    splits of Shchur et al. (2018) with 20 and 30 (:func:`per_class_masks`).

    Args:
        train_per_class: Training nodes per class (``>= 1``).
        val_per_class: Validation nodes per class (``>= 0``).
        seed, label_rate, labels_per_class: See :class:`NodeSplit` (``label_rate`` must stay null).
    """

    name: ClassVar[str] = "per_class"

    def __init__(self, train_per_class: int = TRAIN_PER_CLASS, val_per_class: int = VAL_PER_CLASS, seed: int = 0,
                 label_rate: float | None = None, labels_per_class: int | None = None) -> None:
        _check_per_class(train_per_class, val_per_class)
        self.train_per_class, self.val_per_class = train_per_class, val_per_class
        super().__init__(seed, label_rate, labels_per_class)

    def split_masks(self, y: torch.Tensor, public: Masks | None = None) -> Masks:
        return per_class_masks(y, self.train_per_class, self.val_per_class, self.seed)


# The split kinds by name (``data/split=<name>``).
SPLITS: dict[str, type[NodeSplit]] = {c.name: c for c in (PublicSplit, RandomSplit, KFoldSplit, PerClassSplit)}
