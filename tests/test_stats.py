"""The report's statistics (zoo/report/stats.py), checked against scipy and direct computations on known inputs.
Their coverage in simulated studies: tests/test_coverage.py."""

import numpy as np
import pytest
from scipy import stats

from zoo.report.stats import (
    CROSSED,
    NOT_SEPARABLE,
    REPEATED,
    SINGLE,
    accuracy_ci,
    compare,
    crossed_moments,
    design,
    holm,
    mcnemar_p,
    paired,
    split_wins_ties_losses,
    verdict,
    wins_ties_losses,
)


def _pairs(only_a: int, only_b: int, both: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    """Correctness vectors with the given counts of each (A, B) outcome."""
    a = np.repeat([True, False, True, False], [only_a, only_b, both, neither])
    b = np.repeat([False, True, True, False], [only_a, only_b, both, neither])
    return a, b


@pytest.mark.parametrize("counts", [(7, 2, 50, 10), (2, 7, 50, 10), (13, 13, 5, 0), (0, 5, 20, 3), (1, 0, 0, 0)])
def test_mcnemar_is_the_exact_binomial_test_of_the_discordant_pairs(counts):
    a, b = _pairs(*counts)
    expected = stats.binomtest(counts[0], counts[0] + counts[1], 0.5).pvalue
    assert mcnemar_p(a, b) == pytest.approx(expected, rel=1e-12)
    assert compare(a, b, n_boot=200).p == pytest.approx(expected, rel=1e-12)  # one split: McNemar
    assert mcnemar_p(*_pairs(0, 0, 30, 5)) == 1.0


def test_holm_step_down():
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, np.nan, 0.01]) == pytest.approx([0.5, np.nan, 0.02], nan_ok=True)
    assert holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])


def test_the_design_is_read_from_the_tests():
    assert design(np.zeros(5, int), np.arange(5)) == SINGLE
    assert design(np.repeat([0, 1], 4), np.tile(np.arange(4), 2)) == REPEATED  # same nodes in every split
    assert design(np.array([0, 0, 0, 1, 1, 1]), np.array([0, 1, 2, 1, 2, 3])) == CROSSED  # other nodes


def test_repeated_kfold_resamples_the_node_with_all_its_repeats():
    """A node right in every repeat is one unit: the interval has the width of the per-node means."""
    rng = np.random.default_rng(0)
    node_skill = rng.random(150) < 0.5
    a, b = np.tile(node_skill, (8, 1)), np.zeros((8, 150), bool)
    ci = accuracy_ci(a, n_boot=20_000)
    assert ci.design == REPEATED
    assert (ci.high - ci.low) / 2 == pytest.approx(1.96 * node_skill.std() / np.sqrt(150), rel=0.1)
    result = compare(a, b, n_boot=2000, names=("gcn", "mlp"))
    assert (result.design, result.splits, result.nodes, result.pairs) == (REPEATED, 8, 150, 1200)
    assert result.test.startswith("sign-flip permutation over nodes") and result.p < 0.001


def test_repeated_design_is_widened_by_an_effect_shared_by_all_nodes_of_a_run():
    """A fixed split and 4 training seeds, each seed's model better or worse on every node: the node bootstrap
    alone misses that spread; the interval carries it."""
    rng = np.random.default_rng(5)
    skill = rng.random(300)[None, :] + np.array([-0.15, 0.15, -0.1, 0.1])[:, None]  # per seed, per node
    a = rng.random((4, 300)) < np.clip(skill, 0, 1)
    per_node = accuracy_ci(a, n_boot=4000)
    alone = stats.bootstrap((a.mean(0).astype(float),), np.mean, method="BCa", n_resamples=4000,
                            random_state=0).confidence_interval
    assert per_node.design == REPEATED and per_node.high - per_node.low > 1.3 * (alone.high - alone.low)


def test_crossed_variance_is_the_two_way_anova_one_when_balanced():
    """All nodes in all splits: Var(mean) = (MS_split + MS_node - MS_resid) / (S N)."""
    rng = np.random.default_rng(2)
    y = rng.normal(size=(6, 40)) + rng.normal(size=(6, 1)) + rng.normal(size=(1, 40))
    mean, var, df = crossed_moments(y, np.ones_like(y, bool))
    s, n = y.shape
    ms_split = n * ((y.mean(1) - y.mean()) ** 2).sum() / (s - 1)
    ms_node = s * ((y.mean(0) - y.mean()) ** 2).sum() / (n - 1)
    resid = y - y.mean(1, keepdims=True) - y.mean(0, keepdims=True) + y.mean()
    ms_resid = (resid**2).sum() / ((s - 1) * (n - 1))
    assert mean == pytest.approx(y.mean())
    assert var == pytest.approx((ms_split + ms_node - ms_resid) / (s * n))
    satterthwaite = (ms_split + ms_node - ms_resid) ** 2 / (
        ms_split**2 / (s - 1) + ms_node**2 / (n - 1) + ms_resid**2 / ((s - 1) * (n - 1)))
    assert df == pytest.approx(satterthwaite)


def test_crossed_design_uses_the_t_interval():
    rng = np.random.default_rng(3)
    splits, nodes = np.repeat(np.arange(5), 30), np.concatenate([rng.choice(40, 30, replace=False) for _ in range(5)])
    a = rng.random(150) < 0.8
    ci = accuracy_ci(a, splits, nodes)
    assert ci.design == CROSSED and "crossed splits x nodes" in ci.method and ci.low < a.mean() < ci.high


def test_counts_and_verdict_on_known_inputs():
    a, b = _pairs(7, 2, 50, 10)
    assert wins_ties_losses(a, b) == (7, 60, 2)
    assert verdict((-0.01, 0.02), 0.001) == NOT_SEPARABLE == "not separable at this sample size"
    assert verdict((0.003, 0.02), 0.01, "gcn", "mlp") == "gcn better"
    assert verdict((0.003, 0.02), 0.06, "gcn", "mlp") == NOT_SEPARABLE
    assert verdict((-0.04, -0.001), 0.01, "gcn", "mlp") == "mlp better"
    assert split_wins_ties_losses(np.array([[1, 1, 0], [0, 0, 1], [1, 0, 0]], bool),
                                  np.array([[1, 0, 0], [1, 0, 1], [0, 1, 0]], bool)) == (1, 1, 1)


def test_all_equal_gives_a_zero_width_ci_and_no_verdict():
    a = np.array([True, False, True, True])
    result = compare(a, a, n_boot=500)
    assert (result.ci_low, result.ci_high, result.p) == (0.0, 0.0, 1.0)
    assert (result.wins, result.ties, result.losses) == (0, 4, 0)


def test_compare_pairs_by_split_and_node_ids():
    splits = np.array([1, 0, 0, 1, 0, 1])
    nodes = np.array([3, 1, 2, 1, 3, 2])
    a = np.array([True, True, True, False, True, True])
    b = np.array([True, False, False, True, True, True])
    result = compare(a, b, splits, nodes, names=("gcn", "mlp"), n_boot=2000)
    assert (result.pairs, result.splits, result.nodes, result.design) == (6, 2, 3, REPEATED)
    assert (result.wins, result.ties, result.losses) == (2, 3, 1)
    assert (result.split_wins, result.split_ties, result.split_losses) == (1, 0, 1)
    assert result.difference == pytest.approx(1 / 6)
    assert result.as_dict()["a"] == "gcn"


@pytest.mark.parametrize(("args", "message"), [
    ((np.ones(3, bool), np.ones(4, bool)), r"shapes \(3,\) and \(4,\) differ"),
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


def test_bad_settings_are_refused():
    a, b = _pairs(3, 1, 5, 1)
    with pytest.raises(ValueError, match="n_boot=0"):
        compare(a, b, n_boot=0)
    with pytest.raises(ValueError, match="level=95"):
        accuracy_ci(a, level=95)
