"""Paired statistics for two models tested on the same nodes: does A beat B, by how much, and can we tell?

Inputs are per-node correctness of model A and model B (bool arrays), paired by (repeat, node): either 2-d arrays
``[repeats, nodes]`` (column ``j`` is the same node in every repeat, as in k-fold repeats that each test every
node), or 1-d arrays with optional ``repeats`` and ``nodes`` ids of the same length (a repeat is a split seed or a
k-fold repeat; one repeat when not given; every pair its own node when no ``nodes``). The difference is always A
minus B.

* :func:`mean_difference`: accuracy of A minus accuracy of B over all pairs.
* :func:`bootstrap_ci`: percentile bootstrap CI of that difference, resampling nodes (a node tested in several
  repeats is resampled with all its pairs) or, ``hierarchical=True``, resampling repeats and then the nodes within
  each drawn repeat (which also carries the spread between splits).
* :func:`accuracy_ci`: the same bootstrap for one model's accuracy (a label-rate curve's error bars).
* :func:`bootstrap_mean_ci`: percentile bootstrap CI of the mean of paired per-repeat values (e.g. per-seed
  accuracy differences when no per-node predictions exist), resampling the repeats.
* :func:`mcnemar_exact`: exact McNemar test, the two-sided binomial test of the discordant pairs at 1/2 (every pair
  counted as independent: with repeats of the same nodes, prefer the CI).
* :func:`wins_ties_losses` (per node of each repeat) and :func:`repeat_wins_ties_losses` (per repeat accuracy).
* :func:`verdict`: "not separable at this sample size" when the CI contains 0, else which model is better.
* :func:`resolution`: the half-width of the CI, the smallest difference this comparison resolves (a true
  difference smaller than it would give a CI containing 0). :attr:`Comparison.granularity` is ``1 / pairs``,
  the accuracy of one node.

Numpy only: exact binomial tails with integer arithmetic (``tests/test_stats.py`` checks them against scipy).
"""

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

NOT_SEPARABLE = "not separable at this sample size"
_DRAWS_PER_CHUNK = 1 << 22  # resampled values held in memory at once


@dataclass(frozen=True)
class Pairs:
    """Checked, flattened pairs: correctness of A and B, and the repeat and node index (0-based codes) of each."""

    a: np.ndarray
    b: np.ndarray
    repeats: np.ndarray
    nodes: np.ndarray

    @property
    def difference(self) -> np.ndarray:
        """Per pair: +1 where only A is right, -1 where only B is, 0 on ties."""
        return self.a.astype(np.int64) - self.b.astype(np.int64)


def _correctness(values: ArrayLike, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype != bool:
        if not (np.issubdtype(array.dtype, np.number) and np.isin(array, (0, 1)).all()):
            raise ValueError(f"{name} must hold per-node correctness (bool, or 0/1), got dtype {array.dtype}.")
        array = array.astype(bool)
    return array


def _codes(values: ArrayLike | None, n: int, name: str, default: np.ndarray) -> np.ndarray:
    if values is None:
        return default
    array = np.asarray(values)
    if array.shape != (n,):
        raise ValueError(f"{name} must hold one id per pair ({n}), got shape {array.shape}.")
    return np.unique(array, return_inverse=True)[1].reshape(-1)


def paired(a: ArrayLike, b: ArrayLike, repeats: ArrayLike | None = None, nodes: ArrayLike | None = None) -> Pairs:
    """Check and flatten the pairs (see the module doc for the accepted shapes).

    Raises:
        ValueError: ``a`` and ``b`` differ in shape, are empty or not correctness values; ids of another length,
            ids given with 2-d inputs, or a (repeat, node) pair listed twice.
    """
    a, b = _correctness(a, "a"), _correctness(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must pair up node for node: shapes {a.shape} and {b.shape} differ.")
    if a.ndim not in (1, 2) or a.size == 0:
        raise ValueError(f"a and b must be non-empty 1-d (pairs) or 2-d ([repeats, nodes]) arrays, got {a.shape}.")
    if a.ndim == 2:
        if repeats is not None or nodes is not None:
            raise ValueError("2-d a and b are [repeats, nodes] already: give no repeats/nodes ids.")
        rows, cols = np.indices(a.shape)
        return Pairs(a.reshape(-1), b.reshape(-1), rows.reshape(-1), cols.reshape(-1))
    n = len(a)
    rep = _codes(repeats, n, "repeats", np.zeros(n, dtype=np.int64))
    node = _codes(nodes, n, "nodes", np.arange(n))
    if len(np.unique(rep * n + node)) != n:
        raise ValueError("a (repeat, node) pair is listed twice: each node may be tested once per repeat.")
    return Pairs(a, b, rep, node)


def mean_difference(a: ArrayLike, b: ArrayLike) -> float:
    """Accuracy of A minus accuracy of B over the same pairs."""
    return float(paired(np.ravel(a), np.ravel(b)).difference.mean())


def _node_means(d: np.ndarray, nodes: np.ndarray, rng: np.random.Generator, n_boot: int) -> np.ndarray:
    """Mean difference in ``n_boot`` resamples of the nodes (each drawn node brings all of its pairs)."""
    sums = np.bincount(nodes, weights=d)
    counts = np.bincount(nodes).astype(np.float64)
    k, out = len(sums), np.empty(n_boot)
    step = max(1, _DRAWS_PER_CHUNK // k)
    for start in range(0, n_boot, step):
        drawn = rng.integers(0, k, size=(min(step, n_boot - start), k))
        out[start:start + len(drawn)] = sums[drawn].sum(1) / counts[drawn].sum(1)
    return out


def _repeat_node_means(d: np.ndarray, repeats: np.ndarray, rng: np.random.Generator, n_boot: int) -> np.ndarray:
    """Mean difference in ``n_boot`` two-level resamples: the repeats, then the nodes of each drawn repeat."""
    groups = [d[repeats == r] for r in range(int(repeats.max()) + 1)]
    out = np.empty(n_boot)
    step = max(1, _DRAWS_PER_CHUNK // len(d))
    for start in range(0, n_boot, step):
        m = min(step, n_boot - start)
        chosen = rng.integers(0, len(groups), size=(m, len(groups)))
        totals, sizes = np.zeros(m), np.zeros(m)
        for r, group in enumerate(groups):
            n = (chosen == r).sum(1) * len(group)  # a repeat drawn t times gives t resamples of its nodes
            draws = group[rng.integers(0, len(group), size=int(n.sum()))]
            totals += np.bincount(np.repeat(np.arange(m), n), weights=draws, minlength=m)
            sizes += n
        out[start:start + m] = totals / sizes
    return out


def bootstrap_ci(a: ArrayLike, b: ArrayLike, repeats: ArrayLike | None = None, nodes: ArrayLike | None = None, *,
                 n_boot: int = 10_000, level: float = 0.95, seed: int = 0,
                 hierarchical: bool = False) -> tuple[float, float]:
    """Percentile bootstrap CI of the accuracy difference A - B (``numpy.random.default_rng(seed)``).

    Resamples nodes with replacement (pairs sharing a node id move together), or with ``hierarchical`` the repeats
    first and then the nodes within each drawn repeat.
    """
    if not (isinstance(n_boot, int) and n_boot >= 1):
        raise ValueError(f"n_boot={n_boot!r}: must be an integer >= 1.")
    if not 0 < level < 1:
        raise ValueError(f"level={level}: must be in (0, 1), e.g. 0.95.")
    pairs = paired(a, b, repeats, nodes)
    rng = np.random.default_rng(seed)
    d = pairs.difference.astype(np.float64)
    means = (_repeat_node_means(d, pairs.repeats, rng, n_boot) if hierarchical
             else _node_means(d, pairs.nodes, rng, n_boot))
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def accuracy_ci(correct: ArrayLike, repeats: ArrayLike | None = None, nodes: ArrayLike | None = None, *,
                n_boot: int = 10_000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of one model's accuracy over its (repeat, node) tests: the repeats, then the nodes
    within each drawn repeat, when there are several repeats; else the nodes."""
    correct = np.ravel(correct)
    return bootstrap_ci(correct, np.zeros_like(correct, dtype=bool), repeats, nodes, n_boot=n_boot, level=level,
                        seed=seed, hierarchical=repeats is not None and len(np.unique(np.ravel(repeats))) >= 2)


def bootstrap_mean_ci(values: ArrayLike, *, n_boot: int = 10_000, level: float = 0.95,
                      seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of ``values`` (one per repeat), resampling them with replacement."""
    if not (isinstance(n_boot, int) and n_boot >= 1):
        raise ValueError(f"n_boot={n_boot!r}: must be an integer >= 1.")
    if not 0 < level < 1:
        raise ValueError(f"level={level}: must be in (0, 1), e.g. 0.95.")
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size == 0 or not np.isfinite(v).all():
        raise ValueError(f"values must be a non-empty 1-d array of finite numbers, got shape {v.shape}.")
    rng = np.random.default_rng(seed)
    means, step = np.empty(n_boot), max(1, _DRAWS_PER_CHUNK // len(v))
    for start in range(0, n_boot, step):
        drawn = rng.integers(0, len(v), size=(min(step, n_boot - start), len(v)))
        means[start:start + len(drawn)] = v[drawn].mean(1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def mcnemar_exact(a: ArrayLike, b: ArrayLike) -> float:
    """Two-sided exact McNemar p-value: binomial test of the ``n`` discordant pairs at probability 1/2.

    ``p = min(1, 2 P(X <= min(n_A, n_B)))`` for ``X ~ Binomial(n, 1/2)`` (``n_A``: pairs only A gets right); 1 when
    no pair is discordant.
    """
    pairs = paired(np.ravel(a), np.ravel(b))
    only_a = int((pairs.a & ~pairs.b).sum())
    only_b = int((~pairs.a & pairs.b).sum())
    n = only_a + only_b
    if n == 0:
        return 1.0
    term, tail = 1, 1  # C(n, 0), then C(n, i) summed up to i = min(only_a, only_b), in exact integers
    for i in range(1, min(only_a, only_b) + 1):
        term = term * (n - i + 1) // i
        tail += term
    return min(1.0, 2 * tail / 2**n)


def wins_ties_losses(a: ArrayLike, b: ArrayLike) -> tuple[int, int, int]:
    """Pairs where only A is right (wins), both or neither are (ties), only B is (losses)."""
    pairs = paired(np.ravel(a), np.ravel(b))
    d = pairs.difference
    return int((d > 0).sum()), int((d == 0).sum()), int((d < 0).sum())


def repeat_wins_ties_losses(a: ArrayLike, b: ArrayLike, repeats: ArrayLike | None = None) -> tuple[int, int, int]:
    """Repeats where A's accuracy is higher than B's (wins), equal (ties), lower (losses)."""
    pairs = paired(a, b, repeats)
    d = pairs.difference
    per_repeat = np.bincount(pairs.repeats, weights=d)  # same nodes for A and B: the sign of the accuracy difference
    return int((per_repeat > 0).sum()), int((per_repeat == 0).sum()), int((per_repeat < 0).sum())


def verdict(ci: tuple[float, float], a: str = "A", b: str = "B") -> str:
    """``"not separable at this sample size"`` when the CI of A - B contains 0, else ``"<a> better"``/``"<b> better"``."""
    low, high = ci
    if low <= 0 <= high:
        return NOT_SEPARABLE
    return f"{a} better" if low > 0 else f"{b} better"


def resolution(ci: tuple[float, float]) -> float:
    """Half-width of the CI: the smallest accuracy difference the comparison can tell from 0 at its spread."""
    return (ci[1] - ci[0]) / 2


@dataclass(frozen=True)
class Comparison:
    """Everything :func:`compare` measures for A - B on the same pairs."""

    a: str
    b: str
    pairs: int
    repeats: int
    nodes: int
    acc_a: float
    acc_b: float
    difference: float
    ci_low: float
    ci_high: float
    level: float
    hierarchical: bool
    p_mcnemar: float
    wins: int
    ties: int
    losses: int
    repeat_wins: int
    repeat_ties: int
    repeat_losses: int
    resolution: float
    granularity: float
    verdict: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare(a: ArrayLike, b: ArrayLike, repeats: ArrayLike | None = None, nodes: ArrayLike | None = None, *,
            names: tuple[str, str] = ("A", "B"), n_boot: int = 10_000, level: float = 0.95, seed: int = 0,
            hierarchical: bool = False) -> Comparison:
    """All the statistics above for model ``names[0]`` (``a``) against ``names[1]`` (``b``)."""
    pairs = paired(a, b, repeats, nodes)
    ci = bootstrap_ci(pairs.a, pairs.b, pairs.repeats, pairs.nodes, n_boot=n_boot, level=level, seed=seed,
                      hierarchical=hierarchical)
    wins, ties, losses = wins_ties_losses(pairs.a, pairs.b)
    r_wins, r_ties, r_losses = repeat_wins_ties_losses(pairs.a, pairs.b, pairs.repeats)
    return Comparison(
        a=names[0], b=names[1], pairs=len(pairs.a), repeats=int(pairs.repeats.max()) + 1,
        nodes=int(pairs.nodes.max()) + 1, acc_a=float(pairs.a.mean()), acc_b=float(pairs.b.mean()),
        difference=float(pairs.difference.mean()), ci_low=ci[0], ci_high=ci[1], level=level,
        hierarchical=hierarchical, p_mcnemar=mcnemar_exact(pairs.a, pairs.b), wins=wins, ties=ties, losses=losses,
        repeat_wins=r_wins, repeat_ties=r_ties, repeat_losses=r_losses, resolution=resolution(ci),
        granularity=1 / len(pairs.a), verdict=verdict(ci, *names),
    )
