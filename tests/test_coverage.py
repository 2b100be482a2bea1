"""Every 95 % interval the report publishes covers a known truth in 93-97 % of simulated studies, and every paired
test rejects a true null in at most 5 % (zoo/report/stats.py; the studies: benchmarks/coverage.py).

Monte Carlo error: with ``n`` studies the standard error of a coverage near 0.95 is ``sqrt(0.05 * 0.95 / n)``
(0.007 for 1,000). Coverage is asserted within [0.93, 0.97] (about 3 SE either side). A test whose size is exactly
5 % exceeds 0.05 in half of all simulations, so a false-positive rate is asserted below 0.05 plus 2 SE (the one-sided
97.7 % Monte Carlo bound): 0.064 for 1,000 studies, 0.057 for 4,000.
"""

import numpy as np
import pytest

from benchmarks.coverage import (
    CORA,
    NYC,
    by_run,
    crossed_studies,
    new_crossed,
    new_repeated,
    repeated_studies,
)
from zoo.report import stats

LOW, HIGH = 0.93, 0.97


def _fpr_bound(n: int) -> float:
    return 0.05 + 2 * np.sqrt(0.05 * 0.95 / n)


def _covers(low: np.ndarray, high: np.ndarray, value: float) -> float:
    return float(((low <= value) & (value <= high)).mean())


@pytest.fixture(scope="module")
def repeated():
    a, b, fold, truth = repeated_studies(np.random.default_rng(20), 1000, **NYC)
    return a, b, truth, new_repeated(a, b, fold), fold


@pytest.fixture(scope="module")
def crossed():
    a, b, observed, truth = crossed_studies(np.random.default_rng(25), 4000, **CORA)
    return a, b, observed, truth, new_crossed(a, b, observed)


def test_repeated_kfold_intervals_cover_the_node_population_mean(repeated):
    """NYC's design: 208 nodes of fixed difficulty, 5 repeats of 5 folds each testing every node, each fold's model
    with its own effect."""
    _, _, truth, new, _ = repeated
    assert LOW <= _covers(new["low"], new["high"], truth) <= HIGH
    assert LOW <= _covers(new["d_low"], new["d_high"], 0.0) <= HIGH  # the paired difference, true null


def test_repeated_kfold_sign_flip_test_keeps_its_size(repeated):
    assert (repeated[3]["p"] < 0.05).mean() <= _fpr_bound(1000)


def test_crossed_intervals_cover_the_node_and_split_population_mean(crossed):
    """Random splits: each split tests another 80 % of the nodes, with a per-split effect."""
    _, _, _, truth, new = crossed
    assert LOW <= _covers(new["low"], new["high"], truth) <= HIGH
    assert LOW <= _covers(new["d_low"], new["d_high"], 0.0) <= HIGH
    assert (new["p"] < 0.05).mean() <= _fpr_bound(4000)


def test_single_split_interval_and_exact_mcnemar():
    """One split: every node tested once; the bootstrap over nodes and the exact McNemar test. One run says nothing
    of the spread between runs: the truth is that of the trained model over the node population (no run effect)."""
    settings = {**NYC, "repeats": 1, "folds": 1, "sd_run": 0.0}
    a, b, _, truth = repeated_studies(np.random.default_rng(23), 1000, **settings)
    low, high = stats.node_bootstrap_ci(a[:, 0].astype(float), n_boot=1000, seed=4)
    assert LOW <= _covers(low, high, truth) <= HIGH
    p = np.array([stats.mcnemar_p(x, y) for x, y in zip(a[:, 0], b[:, 0], strict=True)])
    assert (p < 0.05).mean() <= 0.05  # exact and conservative: no slack needed


def test_per_seed_t_interval_covers_the_mean():
    rng = np.random.default_rng(22)
    values = rng.normal(0.01, 0.02, size=(1000, 6))  # per-seed accuracy differences
    low, high, _ = stats.mean_ci(values)
    assert LOW <= _covers(low, high, 0.01) <= HIGH
    assert stats.mean_ci(values[0]) == (pytest.approx(low[0]), pytest.approx(high[0]), pytest.approx(_[0]))
    p = stats.mean_ci(rng.normal(0.0, 0.02, size=(1000, 6)))[2]
    assert (p < 0.05).mean() <= _fpr_bound(1000)


def test_the_previous_method_fails_the_same_simulation(repeated):
    """Drawing the nodes of each repeat independently treats 5 x 208 tests as independent: far too narrow."""
    from benchmarks.coverage import previous_repeats_then_nodes

    a, _, truth, _, _ = repeated
    rng = np.random.default_rng(3)
    old = np.array([previous_repeats_then_nodes(s.astype(float), np.ones_like(s), rng, n_boot=200) for s in a[:100]])
    assert _covers(old[:, 0], old[:, 1], truth) < 0.85


def test_the_report_calls_the_functions_checked_here(repeated, crossed):
    """accuracy_ci and compare (what the tables call) give the batched results above, study by study (the same
    bootstrap on other random draws: within its Monte Carlo error)."""
    a, b, _, new, fold = repeated
    splits, nodes = np.indices(a[0].shape).reshape(2, -1)
    runs = splits * 5 + fold[0].ravel()
    one = stats.accuracy_ci(a[0].ravel(), splits, nodes, runs=runs, n_boot=1000, seed=1)
    assert (one.design, one.low, one.high) == (stats.REPEATED, pytest.approx(new["low"][0], abs=0.005),
                                                pytest.approx(new["high"][0], abs=0.005))
    pair = stats.compare(a[0].ravel(), b[0].ravel(), splits, nodes, runs=runs, n_boot=1000, seed=2)
    assert (pair.ci_low, pair.ci_high) == (pytest.approx(new["d_low"][0], abs=0.005),
                                           pytest.approx(new["d_high"][0], abs=0.005))
    d = a[0].astype(float) - b[0]
    y, observed = by_run(d[None], fold[:1])
    moments = stats.crossed_moments(y[0], observed[0])
    assert pair.p == stats.repeated_p(d.mean(0), moments, n_resamples=1000, seed=2)
    a, b, observed, _, new = crossed
    splits, nodes = np.nonzero(observed[0])
    one = stats.accuracy_ci(a[0][observed[0]], splits, nodes)
    assert (one.design, one.low, one.high) == (stats.CROSSED, pytest.approx(new["low"][0]),
                                               pytest.approx(new["high"][0]))
    pair = stats.compare(a[0][observed[0]], b[0][observed[0]], splits, nodes)
    assert (pair.ci_low, pair.ci_high, pair.p) == (pytest.approx(new["d_low"][0]), pytest.approx(new["d_high"][0]),
                                                   pytest.approx(new["p"][0]))
