"""The report's statistics: accuracy intervals and paired tests that resample the unit that is independent.

**Inputs.** Per-test outcomes of one model (correctness) or of two models on the same tests (A and B), each test a
(split, node) cell: 2-d arrays ``[splits, nodes]``, or 1-d arrays with ``splits`` and ``nodes`` ids (one split when
not given; every test its own node when no ``nodes``). A split is a seed's split, or a k-fold repeat with all its
folds. Differences are always A minus B.

**Estimand.** The expected accuracy of the model (or the expected difference A - B) over the population the nodes
are drawn from, and, where splits vary, over the population of splits (random splits, training seeds): the number a
reader expects when running the same protocol on new nodes of the same kind. With one split (one trained model) the
spread between runs cannot be measured: the estimand is that model's expected accuracy over the node population. A
95 % interval covers the estimand in 95 % of studies; ``tests/test_coverage.py`` simulates studies with a known
truth and checks 93-97 % (``benchmarks/coverage.py`` prints the same for the previous methods).

**Designs** (:func:`design`, picked from the ids):

* ``single`` (one split: every node tested once). Interval: BCa bootstrap over nodes (``scipy.stats.bootstrap``).
  Paired test: exact McNemar, the binomial test of the discordant nodes at 1/2 (``scipy.stats.binomtest``).
* ``repeated`` (several splits, every one testing the same node set: repeated k-fold). The unit is the node carrying
  all its repeats: the per-node mean over the repeats, then the BCa bootstrap over nodes. Paired test: a sign-flip
  permutation test of the per-node mean differences (``scipy.stats.permutation_test``, ``permutation_type=
  'samples'``). A run (one fold's model, or a whole repeat, e.g. one training seed on a fixed split) may carry an
  effect shared by all the nodes it tests, which the node bootstrap misses: where the crossed runs x nodes variance
  below exceeds the node variance, each half-width ``h`` becomes ``sqrt(h^2 + t^2 * excess)`` (``t`` with runs - 1
  df), and the p is the larger of the sign-flip test's and a t test's with that variance (Satterthwaite df).
* ``crossed`` (splits testing different, overlapping node sets: random splits). Splits and nodes are crossed random
  effects. ``Var(mean) = s2_split * sum (n_s/T)^2 + s2_node * sum (n_v/T)^2 + s2_resid / T`` (``n_s``: tests of split
  ``s``, ``n_v``: of node ``v``, ``T``: all tests), the components estimated by the method of moments from the
  squared differences of tests in the same split, of the same node, and of neither (Owen 2007, the pigeonhole
  bootstrap's variance), clamped at zero and at the larger one-way (split-cluster or node-cluster) estimate; a
  t interval with Satterthwaite's degrees of freedom. The paired test is the t test of the per-test differences with
  that variance.

:func:`holm` adjusts the p-values of one table (family-wise error); :func:`verdict` calls a pair separable only
when its Holm-adjusted p is below ``1 - level`` and its interval excludes 0. :func:`mean_ci` is the t interval of
per-seed values (one accuracy per run, no per-node outcomes).
"""

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

NOT_SEPARABLE = "not separable at this sample size"
SINGLE, REPEATED, CROSSED = "single", "repeated", "crossed"
METHODS = {  # what each table states
    SINGLE: ("BCa bootstrap over nodes", "exact McNemar"),
    REPEATED: ("BCa bootstrap over nodes, each with the mean of its repeats, widened by the crossed runs x nodes "
               "variance where that is larger", "sign-flip permutation over nodes, or the t test with the crossed "
               "variance where its p is larger"),
    CROSSED: ("t interval, crossed splits x nodes method-of-moments variance (Satterthwaite df)",
              "t test, crossed splits x nodes variance"),
}
BATCH_VALUES = 1 << 22  # resampled values held in memory at once


@dataclass(frozen=True)
class Pairs:
    """Checked, flattened tests: outcomes of A and B, and the split and node index (0-based codes) of each."""

    a: np.ndarray
    b: np.ndarray
    splits: np.ndarray
    nodes: np.ndarray
    runs: np.ndarray  # the run (e.g. one fold of a k-fold repeat) that made each test; the split when not given

    @property
    def difference(self) -> np.ndarray:
        """Per test: +1 where only A is right, -1 where only B is, 0 on ties."""
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


def paired(a: ArrayLike, b: ArrayLike, splits: ArrayLike | None = None, nodes: ArrayLike | None = None,
           runs: ArrayLike | None = None) -> Pairs:
    """Check and flatten the tests (see the module doc for the accepted shapes; ``runs``: ids of the run that made
    each test, finer than the split, e.g. the fold of a k-fold repeat).

    Raises:
        ValueError: ``a`` and ``b`` differ in shape, are empty or not correctness values; ids of another length,
            ids given with 2-d inputs, or a (split, node) pair listed twice.
    """
    a, b = _correctness(a, "a"), _correctness(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must pair up node for node: shapes {a.shape} and {b.shape} differ.")
    if a.ndim not in (1, 2) or a.size == 0:
        raise ValueError(f"a and b must be non-empty 1-d (pairs) or 2-d ([splits, nodes]) arrays, got {a.shape}.")
    if a.ndim == 2:
        if splits is not None or nodes is not None or runs is not None:
            raise ValueError("2-d a and b are [splits, nodes] already: give no splits/nodes ids.")
        rows, cols = np.indices(a.shape)
        return Pairs(a.reshape(-1), b.reshape(-1), rows.reshape(-1), cols.reshape(-1), rows.reshape(-1))
    n = len(a)
    split = _codes(splits, n, "splits", np.zeros(n, dtype=np.int64))
    node = _codes(nodes, n, "nodes", np.arange(n))
    run = _codes(runs, n, "runs", split)
    if len(np.unique(split * n + node)) != n:
        raise ValueError("a (split, node) pair is listed twice: each node may be tested once per split.")
    return Pairs(a, b, split, node, run)


def design(splits: np.ndarray, nodes: np.ndarray) -> str:
    """``single`` (one split), ``repeated`` (every split tests the same nodes) or ``crossed`` (the node sets differ);
    ``splits`` and ``nodes`` are 0-based codes of each test."""
    n_splits = int(splits.max()) + 1
    if n_splits == 1:
        return SINGLE
    counts = np.bincount(nodes)
    return REPEATED if (counts == n_splits).all() else CROSSED


def _matrix(values: np.ndarray, splits: np.ndarray, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[splits, nodes]`` values (0 where not tested) and the mask of tested cells."""
    shape = (int(splits.max()) + 1, int(nodes.max()) + 1)
    y, observed = np.zeros(shape), np.zeros(shape, bool)
    y[splits, nodes] = values
    observed[splits, nodes] = True
    return y, observed


def _mean(x: np.ndarray, axis: int) -> np.ndarray:
    return np.mean(x, axis=axis)


def node_bootstrap_ci(node_values: ArrayLike, *, level: float = 0.95, n_boot: int = 10_000,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """BCa bootstrap CI of the mean over nodes (last axis; leading axes are separate studies), by
    ``scipy.stats.bootstrap``. Nodes whose values are all equal give the zero-width interval at that value."""
    x = np.asarray(node_values, dtype=np.float64)
    constant = np.all(x == x[..., :1], axis=-1)
    if np.all(constant):
        return x[..., 0].copy(), x[..., 0].copy()
    with warnings.catch_warnings():  # a degenerate study of a batch: handled below
        warnings.simplefilter("ignore")
        ci = stats.bootstrap((x,), _mean, axis=-1, vectorized=True, n_resamples=n_boot, confidence_level=level,
                             method="BCa", batch=max(1, BATCH_VALUES // x.size),
                             rng=np.random.default_rng(seed)).confidence_interval
    low, high = np.where(constant, x[..., 0], ci.low), np.where(constant, x[..., 0], ci.high)
    return low, high


def sign_flip_p(node_differences: ArrayLike, *, n_resamples: int = 9_999, seed: int = 0) -> np.ndarray:
    """Two-sided p-value of a mean difference of 0: the per-node mean differences (last axis; leading axes are
    separate studies) with their signs flipped at random (``scipy.stats.permutation_test``)."""
    d = np.asarray(node_differences, dtype=np.float64)
    if not np.any(d):
        return np.ones(d.shape[:-1]) if d.ndim > 1 else np.float64(1.0)
    result = stats.permutation_test((d,), _mean, permutation_type="samples", vectorized=True, axis=-1,
                                    n_resamples=n_resamples, batch=max(1, BATCH_VALUES // d.size),
                                    rng=np.random.default_rng(seed))
    return result.pvalue


def crossed_moments(y: ArrayLike, observed: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, variance of the mean and Satterthwaite degrees of freedom of ``[splits, nodes]`` outcomes (last two
    axes; leading axes are separate studies) observed where ``observed``: the crossed design of the module doc."""
    z = np.asarray(observed, bool)
    y = np.where(z, np.asarray(y, dtype=np.float64), 0.0)
    t = z.sum((-2, -1)).astype(np.float64)
    r, c = z.sum(-1).astype(np.float64), z.sum(-2).astype(np.float64)
    s1, s2 = y.sum((-2, -1)), (y * y).sum((-2, -1))
    r1, r2, c1, c2 = y.sum(-1), (y * y).sum(-1), y.sum(-2), (y * y).sum(-2)
    ss_all = 2 * t * s2 - 2 * s1**2
    ss_row = (2 * r * r2 - 2 * r1**2).sum(-1)  # ordered pairs of tests in the same split
    ss_col = (2 * c * c2 - 2 * c1**2).sum(-1)  # ... of the same node
    p_row, p_col = (r**2).sum(-1) - t, (c**2).sum(-1) - t
    p_both = t**2 - (r**2).sum(-1) - (c**2).sum(-1) + t
    with np.errstate(invalid="ignore", divide="ignore"):
        u_row, u_both = ss_row / p_row, (ss_all - ss_row - ss_col) / p_both
        u_col = np.where(p_col > 0, ss_col / np.where(p_col > 0, p_col, 1), u_both)  # no node twice: no node term
    s_split = np.maximum((u_both - u_row) / 2, 0)
    s_node = np.where(p_col > 0, np.maximum((u_both - u_col) / 2, 0), 0)
    s_resid = np.where(p_col > 0, np.maximum((u_row + u_col - u_both) / 2, 0), np.maximum(u_row / 2, 0))
    c_split = s_split * ((r / t[..., None]) ** 2).sum(-1)
    c_node = s_node * ((c / t[..., None]) ** 2).sum(-1)
    c_resid = s_resid / t
    var = c_split + c_node + c_resid
    n_splits, n_nodes = (r > 0).sum(-1), (c > 0).sum(-1)
    mean = s1 / t
    with np.errstate(invalid="ignore", divide="ignore"):  # one-way cluster (sandwich) estimates
        split_means, node_means = r1 / np.maximum(r, 1), c1 / np.maximum(c, 1)
        v_split = (((r / t[..., None]) * (split_means - mean[..., None])) ** 2).sum(-1) * n_splits / (n_splits - 1)
        v_node = (((c / t[..., None]) * (node_means - mean[..., None])) ** 2).sum(-1) * n_nodes / np.maximum(
            n_nodes - 1, 1)
    var = np.maximum(var, np.maximum(np.nan_to_num(v_split), np.nan_to_num(v_node)))
    # Satterthwaite for the mean-square combination split + node - resid (balanced: (MS_s + MS_v - MS_e) / T).
    terms = ((c_split + c_resid) ** 2 / np.maximum(n_splits - 1, 1) + (c_node + c_resid) ** 2 / np.maximum(
        n_nodes - 1, 1) + c_resid**2 / np.maximum((n_splits - 1) * (n_nodes - 1), 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        df = np.where(terms > 0, (c_split + c_node + c_resid) ** 2 / np.where(terms > 0, terms, 1), n_splits - 1)
    return mean, var, np.maximum(df, 1.0)


def crossed_ci(mean: np.ndarray, var: np.ndarray, df: np.ndarray, level: float = 0.95
               ) -> tuple[np.ndarray, np.ndarray]:
    """The t interval ``mean ± t_{df} sqrt(var)``."""
    half = stats.t.ppf((1 + level) / 2, df) * np.sqrt(var)
    return mean - half, mean + half


def crossed_p(mean: np.ndarray, var: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Two-sided p-value of a mean of 0 (t test with the crossed variance); 0 or 1 where the variance is 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        p = 2 * stats.t.sf(np.abs(mean) / np.sqrt(var), df)
    return np.where(var > 0, p, np.where(mean == 0, 1.0, 0.0))


def mcnemar_p(a: ArrayLike, b: ArrayLike) -> float:
    """Exact McNemar: two-sided ``scipy.stats.binomtest`` of the tests only A gets right among the discordant ones,
    at 1/2; 1 when none is discordant. Valid where every node is tested once."""
    a, b = np.ravel(np.asarray(a, bool)), np.ravel(np.asarray(b, bool))
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    return 1.0 if only_a + only_b == 0 else float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue)


def holm(pvalues: ArrayLike) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error over one table's comparisons); NaN stays NaN."""
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out[order] = adjusted
    return out


def mean_ci(values: ArrayLike, *, level: float = 0.95) -> tuple[Any, Any, Any]:
    """t interval of the mean of ``values`` (one per seed; last axis, leading axes are separate studies) and the
    two-sided p of a mean of 0 (``scipy.stats.ttest_1samp``); the zero-width interval (p 1 or 0) where all values are
    equal."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim < 1 or v.shape[-1] < 2 or not np.isfinite(v).all():
        raise ValueError(f"values must hold at least 2 finite numbers, got {v!r}.")
    constant = np.all(v == v[..., :1], axis=-1)
    with warnings.catch_warnings():  # constant values: handled below
        warnings.simplefilter("ignore")
        result = stats.ttest_1samp(v, 0.0, axis=-1)
        ci = result.confidence_interval(level)
    first = v[..., 0]
    low, high = np.where(constant, first, ci.low), np.where(constant, first, ci.high)
    p = np.where(constant, np.where(first == 0, 1.0, 0.0), result.pvalue)
    return (float(low), float(high), float(p)) if v.ndim == 1 else (low, high, p)


def _check(level: float, n_boot: int) -> None:
    if not (isinstance(n_boot, int) and n_boot >= 1):
        raise ValueError(f"n_boot={n_boot!r}: must be an integer >= 1.")
    if not 0 < level < 1:
        raise ValueError(f"level={level}: must be in (0, 1), e.g. 0.95.")


@dataclass(frozen=True)
class Interval:
    """One mean (accuracy, or difference) with its interval, the design and the method."""

    estimate: float
    low: float
    high: float
    design: str
    method: str


def _excess(x: np.ndarray, crossed: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The node variance of the mean of per-node values ``x`` and how much the crossed variance exceeds it (>= 0)."""
    v_node = x.var(-1, ddof=1) / x.shape[-1]
    return v_node, np.maximum(crossed[1] - v_node, 0.0)


def repeated_interval(node_values: ArrayLike, y: ArrayLike, observed: ArrayLike, *, level: float = 0.95,
                      n_boot: int = 10_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
    """The repeated design's interval: the node bootstrap of the per-node means ``node_values`` (last axis), each
    half-width ``h`` widened to ``sqrt(h^2 + t^2 * excess)``, ``excess`` being how much the crossed variance of the
    ``[runs, nodes]`` outcomes ``y`` exceeds the node variance, ``t`` the quantile with ``runs - 1`` df (a run, e.g.
    one fold's model or a whole repeat, may carry an effect shared by all its nodes, which the node bootstrap alone
    misses). Leading axes are separate studies. Returns low, high, and the mean, variance and the crossed design's
    Satterthwaite df for :func:`repeated_p`."""
    x = np.asarray(node_values, dtype=np.float64)
    z = np.asarray(observed, bool)
    low, high = node_bootstrap_ci(x, level=level, n_boot=n_boot, seed=seed)
    runs = z.any(-1).sum(-1)
    crossed = crossed_moments(y, z)
    v_node, excess = _excess(x, crossed)
    mean = x.mean(-1)
    extra = stats.t.ppf((1 + level) / 2, np.maximum(runs - 1, 1)) ** 2 * excess
    low, high = mean - np.sqrt((mean - low) ** 2 + extra), mean + np.sqrt((high - mean) ** 2 + extra)
    return low, high, (mean, v_node + excess, crossed[2])


def repeated_p(node_differences: ArrayLike, moments: tuple[np.ndarray, ...], *, n_resamples: int = 9_999,
               seed: int = 0) -> np.ndarray:
    """The repeated design's p: the larger of the sign-flip test's and the t test's with the variance and df of
    :func:`repeated_interval`."""
    return np.maximum(sign_flip_p(node_differences, n_resamples=n_resamples, seed=seed), crossed_p(*moments))


def _interval(values: np.ndarray, pairs: Pairs, level: float, n_boot: int, seed: int
              ) -> tuple[Interval, Any, Any]:
    """The interval of the mean of ``values`` over ``pairs``' tests, and what the design's test needs."""
    kind = design(pairs.splits, pairs.nodes)
    estimate = float(values.mean())
    if kind == CROSSED:
        moments = crossed_moments(*_matrix(values, pairs.splits, pairs.nodes))
        low, high = crossed_ci(*moments, level)
        return Interval(estimate, float(low), float(high), kind, METHODS[kind][0]), None, moments
    per_node = np.bincount(pairs.nodes, weights=values) / np.bincount(pairs.nodes)
    if kind == SINGLE:
        low, high = node_bootstrap_ci(per_node, level=level, n_boot=n_boot, seed=seed)
        return Interval(estimate, float(low), float(high), kind, METHODS[kind][0]), per_node, None
    y, observed = _matrix(values, pairs.runs, pairs.nodes)
    low, high, moments = repeated_interval(per_node, y, observed, level=level, n_boot=n_boot, seed=seed)
    return Interval(estimate, float(low), float(high), kind, METHODS[kind][0]), per_node, moments


def accuracy_ci(correct: ArrayLike, splits: ArrayLike | None = None, nodes: ArrayLike | None = None, *,
                runs: ArrayLike | None = None, n_boot: int = 10_000, level: float = 0.95, seed: int = 0) -> Interval:
    """One model's accuracy over its (split, node) tests with its interval, by the design of the tests (``runs``:
    the run that made each test, e.g. the fold of a k-fold repeat)."""
    _check(level, n_boot)
    correct = np.asarray(correct)
    pairs = paired(correct, np.zeros_like(correct, dtype=bool), splits, nodes, runs)
    return _interval(pairs.a.astype(np.float64), pairs, level, n_boot, seed)[0]


def wins_ties_losses(a: ArrayLike, b: ArrayLike) -> tuple[int, int, int]:
    """Tests where only A is right (wins), both or neither are (ties), only B is (losses)."""
    d = paired(np.ravel(a), np.ravel(b)).difference
    return int((d > 0).sum()), int((d == 0).sum()), int((d < 0).sum())


def split_wins_ties_losses(a: ArrayLike, b: ArrayLike, splits: ArrayLike | None = None) -> tuple[int, int, int]:
    """Splits where A's accuracy is higher than B's (wins), equal (ties), lower (losses)."""
    pairs = paired(a, b, splits)
    per_split = np.bincount(pairs.splits, weights=pairs.difference)  # same nodes for A and B
    return int((per_split > 0).sum()), int((per_split == 0).sum()), int((per_split < 0).sum())


def verdict(ci: tuple[float, float], p_adjusted: float = 0.0, a: str = "A", b: str = "B",
            alpha: float = 0.05) -> str:
    """``"<a> better"`` / ``"<b> better"`` when the interval of A - B excludes 0 and the (Holm-adjusted) p is below
    ``alpha``; else ``"not separable at this sample size"``."""
    low, high = ci
    if low <= 0 <= high or not p_adjusted < alpha:
        return NOT_SEPARABLE
    return f"{a} better" if low > 0 else f"{b} better"


@dataclass(frozen=True)
class Comparison:
    """Everything :func:`compare` measures for A - B on the same tests (``p``: before the table's Holm step)."""

    a: str
    b: str
    pairs: int
    splits: int
    nodes: int
    design: str
    acc_a: float
    acc_b: float
    difference: float
    ci_low: float
    ci_high: float
    level: float
    p: float
    test: str
    interval: str
    wins: int
    ties: int
    losses: int
    split_wins: int
    split_ties: int
    split_losses: int
    resolution: float
    granularity: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare(a: ArrayLike, b: ArrayLike, splits: ArrayLike | None = None, nodes: ArrayLike | None = None, *,
            runs: ArrayLike | None = None, names: tuple[str, str] = ("A", "B"), n_boot: int = 10_000,
            level: float = 0.95, seed: int = 0) -> Comparison:
    """Model ``names[0]`` (``a``) against ``names[1]`` (``b``) on the same tests: the mean difference, its interval
    and the paired test of the tests' design (module doc)."""
    _check(level, n_boot)
    pairs = paired(a, b, splits, nodes, runs)
    ci, per_node, moments = _interval(pairs.difference.astype(np.float64), pairs, level, n_boot, seed)
    if ci.design == SINGLE:
        p = mcnemar_p(pairs.a, pairs.b)
    elif ci.design == REPEATED:
        p = float(repeated_p(per_node, moments, n_resamples=n_boot, seed=seed))
    else:
        p = float(crossed_p(*moments))
    wins, ties, losses = wins_ties_losses(pairs.a, pairs.b)
    s_wins, s_ties, s_losses = split_wins_ties_losses(pairs.a, pairs.b, pairs.splits)
    return Comparison(
        a=names[0], b=names[1], pairs=len(pairs.a), splits=int(pairs.splits.max()) + 1,
        nodes=int(pairs.nodes.max()) + 1, design=ci.design, acc_a=float(pairs.a.mean()), acc_b=float(pairs.b.mean()),
        difference=ci.estimate, ci_low=ci.low, ci_high=ci.high, level=level, p=p, test=METHODS[ci.design][1],
        interval=ci.method, wins=wins, ties=ties, losses=losses, split_wins=s_wins, split_ties=s_ties,
        split_losses=s_losses, resolution=(ci.high - ci.low) / 2, granularity=1 / (int(pairs.nodes.max()) + 1),
    )
