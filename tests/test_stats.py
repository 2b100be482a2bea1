"""Paired statistics (zoo/report/stats.py), checked against scipy and direct computations on known inputs."""

import numpy as np
import pytest
from scipy import stats

from zoo.report.stats import (
    NOT_SEPARABLE,
    bootstrap_ci,
    compare,
    mcnemar_exact,
    mean_difference,
    paired,
    repeat_wins_ties_losses,
    resolution,
    verdict,
    wins_ties_losses,
)


def _pairs(only_a: int, only_b: int, both: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    """Correctness vectors with the given counts of each (A, B) outcome."""
    a = np.repeat([True, False, True, False], [only_a, only_b, both, neither])
    b = np.repeat([False, True, True, False], [only_a, only_b, both, neither])
    return a, b


@pytest.mark.parametrize("counts", [(7, 2, 50, 10), (2, 7, 50, 10), (13, 13, 5, 0), (0, 5, 20, 3), (30, 12, 400, 40),
                                    (1, 0, 0, 0), (160, 130, 10, 0)])
def test_mcnemar_is_the_exact_binomial_test_of_the_discordant_pairs(counts):
    a, b = _pairs(*counts)
    expected = stats.binomtest(counts[0], counts[0] + counts[1], 0.5, alternative="two-sided").pvalue
    assert mcnemar_exact(a, b) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_mcnemar_without_discordant_pairs_is_one():
    a, b = _pairs(0, 0, 30, 5)
    assert mcnemar_exact(a, b) == 1.0
    assert mcnemar_exact(np.ones(4, bool), np.ones(4, bool)) == 1.0


def test_counts_difference_and_verdict_on_known_inputs():
    a, b = _pairs(7, 2, 50, 10)
    assert mean_difference(a, b) == pytest.approx(5 / 69)
    assert wins_ties_losses(a, b) == (7, 60, 2)
    assert wins_ties_losses(b, a) == (2, 60, 7)
    assert verdict((-0.01, 0.02)) == NOT_SEPARABLE == "not separable at this sample size"
    assert verdict((0.0, 0.02)) == NOT_SEPARABLE
    assert verdict((0.003, 0.02), "gcn", "mlp") == "gcn better"
    assert verdict((-0.04, -0.001), "gcn", "mlp") == "mlp better"
    assert resolution((-0.01, 0.03)) == pytest.approx(0.02)


def test_bootstrap_over_nodes_agrees_with_scipy():
    rng = np.random.default_rng(3)
    a, b = rng.random(400) < 0.85, rng.random(400) < 0.78
    d = a.astype(float) - b
    ours = bootstrap_ci(a, b, n_boot=40_000, seed=1)
    theirs = stats.bootstrap((d,), np.mean, n_resamples=40_000, method="percentile", confidence_level=0.95,
                             random_state=np.random.default_rng(2)).confidence_interval
    assert ours == pytest.approx((theirs.low, theirs.high), abs=0.004)
    assert ours[0] < d.mean() < ours[1]
    assert bootstrap_ci(a, b, n_boot=2000, seed=5) == bootstrap_ci(a, b, n_boot=2000, seed=5)  # seeded
    assert bootstrap_ci(a, b, n_boot=2000, seed=5) != bootstrap_ci(a, b, n_boot=2000, seed=6)


def test_bootstrap_resamples_nodes_with_all_their_repeats():
    """A node tested in every repeat is one unit: its width is that of the per-node means, not of all pairs."""
    rng = np.random.default_rng(0)
    node_skill = rng.random(150) < 0.5  # A is right on these nodes in every repeat, B never
    a, b = np.tile(node_skill, (8, 1)), np.zeros((8, 150), bool)
    low, high = bootstrap_ci(a, b, n_boot=20_000, seed=0)
    half_width = 1.96 * node_skill.std() / np.sqrt(150)  # normal approximation over 150 nodes
    assert (high - low) / 2 == pytest.approx(half_width, rel=0.1)
    flat = bootstrap_ci(a.ravel(), b.ravel(), n_boot=20_000, seed=0)  # as 1200 unrelated pairs: too narrow
    assert (flat[1] - flat[0]) / 2 == pytest.approx(half_width / np.sqrt(8), rel=0.1)


def test_hierarchical_bootstrap_carries_the_spread_between_repeats():
    """Two-level resampling: var = (between-repeat variance + mean within-repeat variance / n) / repeats."""
    rng = np.random.default_rng(1)
    repeats, n = 12, 60
    rates = np.linspace(0.05, 0.6, repeats)  # A's edge differs a lot from split to split
    a = rng.random((repeats, n)) < rates[:, None] + 0.3
    b = rng.random((repeats, n)) < 0.3
    d = a.astype(float) - b
    between, within = d.mean(1).var(), d.var(1).mean()
    half_width = 1.96 * np.sqrt((between + within / n) / repeats)
    low, high = bootstrap_ci(a, b, n_boot=20_000, seed=0, hierarchical=True)
    assert (high - low) / 2 == pytest.approx(half_width, rel=0.1)
    flat = bootstrap_ci(a, b, n_boot=20_000, seed=0)
    assert (flat[1] - flat[0]) < (high - low)  # resampling nodes alone misses the between-split spread


def test_all_equal_gives_a_zero_width_ci_and_no_verdict():
    a = np.array([True, False, True, True])
    ci = bootstrap_ci(a, a, n_boot=500)
    assert ci == (0.0, 0.0) and verdict(ci) == NOT_SEPARABLE
    result = compare(a, a, n_boot=500)
    assert (result.difference, result.p_mcnemar, result.wins, result.ties, result.losses) == (0.0, 1.0, 0, 4, 0)


def test_compare_pairs_by_repeat_and_node_ids():
    # Repeat 0: A wins on nodes 1 and 2; repeat 1: B wins on node 1; ids given out of order.
    repeats = np.array([1, 0, 0, 1, 0, 1])
    nodes = np.array([3, 1, 2, 1, 3, 2])
    a = np.array([True, True, True, False, True, True])
    b = np.array([True, False, False, True, True, True])
    result = compare(a, b, repeats, nodes, names=("gcn", "mlp"), n_boot=2000)
    assert (result.pairs, result.repeats, result.nodes) == (6, 2, 3)
    assert (result.wins, result.ties, result.losses) == (2, 3, 1)
    assert (result.repeat_wins, result.repeat_ties, result.repeat_losses) == (1, 0, 1)
    assert result.difference == pytest.approx(1 / 6) and result.granularity == pytest.approx(1 / 6)
    assert result.p_mcnemar == pytest.approx(stats.binomtest(2, 3, 0.5).pvalue)
    assert result.resolution == pytest.approx((result.ci_high - result.ci_low) / 2)
    assert result.verdict == verdict((result.ci_low, result.ci_high), "gcn", "mlp")
    assert result.as_dict()["verdict"] == result.verdict


def test_separable_and_inseparable_comparisons_are_named():
    clear = compare(*_pairs(60, 5, 300, 35), names=("delineation", "logreg"), n_boot=4000)
    assert clear.ci_low > 0 and clear.verdict == "delineation better" and clear.p_mcnemar < 1e-10
    close = compare(*_pairs(6, 5, 300, 35), names=("delineation", "logreg"), n_boot=4000)
    assert close.ci_low < 0 < close.ci_high and close.verdict == NOT_SEPARABLE


def test_repeat_wins_compare_accuracies_per_repeat():
    a = np.array([[1, 1, 0], [0, 0, 1], [1, 0, 0]], bool)
    b = np.array([[1, 0, 0], [1, 0, 1], [0, 1, 0]], bool)
    assert repeat_wins_ties_losses(a, b) == (1, 1, 1)


@pytest.mark.parametrize(("args", "message"), [
    ((np.ones(3, bool), np.ones(4, bool)), r"shapes \(3,\) and \(4,\) differ"),
    ((np.ones((2, 3), bool), np.ones((3, 2), bool)), "differ"),
    ((np.array([], bool), np.array([], bool)), "non-empty"),
    ((np.array([0.5, 1.0]), np.array([1.0, 1.0])), "correctness"),
    ((np.ones(3, bool), np.ones(3, bool), np.zeros(2)), r"one id per pair \(3\)"),
    ((np.ones(2, bool), np.ones(2, bool), [0, 0], [7, 7]), "listed twice"),
    ((np.ones((2, 2), bool), np.ones((2, 2), bool), [0, 1]), "2-d"),
])
def test_mismatched_inputs_are_refused(args, message):
    with pytest.raises(ValueError, match=message):
        paired(*args)
    with pytest.raises(ValueError, match=message):
        compare(*args, n_boot=10)


def test_bad_bootstrap_settings_are_refused():
    a, b = _pairs(3, 1, 5, 1)
    with pytest.raises(ValueError, match="n_boot=0"):
        bootstrap_ci(a, b, n_boot=0)
    with pytest.raises(ValueError, match="level=95"):
        bootstrap_ci(a, b, level=95)
