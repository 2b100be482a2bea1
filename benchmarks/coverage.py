"""Coverage of the report's 95 % intervals and false-positive rate of its paired tests, in simulated studies with a
known truth: ``python -m benchmarks.coverage [--studies 1000]``.

Two designs, each a population of nodes with a fixed per-node difficulty (``p = expit(mu + sd_node * u)``,
``u ~ N(0, 1)``):

* **repeated** (NYC-like): 208 nodes, 5 repeats of 5-fold cross-validation, each testing every node once; each
  fold's model has its own effect on the logit (``sd_run``).
* **crossed** (random splits, Cora-like): 10 splits, each testing a random 80 % of 400 nodes, with a per-split
  effect on the logit (``sd_split``).

Two models disagree node by node: A's logit is ``mu + sd_node * u + sd_model * w``, B's ``mu + sd_node * u - sd_model *
w`` (``w ~ N(0, 1)`` per node; each model its own split effects), so both have the same expected accuracy over the
population (a true null of no difference) while one sample of nodes favours one of them. The truth is the expected
accuracy over the node (and split) population, ``E[expit(mu + sd * u)]`` with ``sd`` the root sum of squares of the
logit's standard deviations.

It prints, per design, the share of studies whose interval covers the truth and the share of null pairs called
different, for the report's methods (:mod:`zoo.report.stats`) and for the previous ones (per-repeat resampling of the
nodes, "repeats then nodes"; McNemar over every test), copied below for this comparison only.
"""

import argparse

import numpy as np
from scipy import stats as sp
from scipy.special import expit

from zoo.report import stats

NYC = {"nodes": 208, "repeats": 5, "folds": 5, "mu": 2.6, "sd_node": 2.5, "sd_model": 1.0, "sd_run": 0.3}
CORA = {"splits": 10, "nodes": 400, "tested": 0.8, "mu": 1.5, "sd_node": 1.5, "sd_split": 0.3, "sd_model": 1.0}


def truth(mu: float, sd: float) -> float:
    """``E[expit(mu + sd * u)]`` for ``u ~ N(0, 1)`` (Gauss-Hermite quadrature)."""
    x, w = np.polynomial.hermite_e.hermegauss(100)
    return float((w * expit(mu + sd * x)).sum() / w.sum())


def repeated_studies(rng: np.random.Generator, studies: int, nodes: int = 208, repeats: int = 5, folds: int = 5,
                     mu: float = 2.6, sd_node: float = 2.5, sd_model: float = 1.0, sd_run: float = 0.3
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Correctness of models A and B ``[studies, repeats, nodes]``, the fold that tested each node in each repeat,
    and A's truth (module doc; each fold's model of each repeat has its own effect, ``sd_run``)."""
    u = sd_node * rng.standard_normal((studies, 1, nodes))
    w = sd_model * rng.standard_normal((studies, 1, nodes))
    fold = np.argsort(rng.random((studies, repeats, nodes)), axis=-1) % folds  # a random partition per repeat
    runs = [np.take_along_axis(sd_run * rng.standard_normal((studies, repeats, folds)), fold, -1) for _ in "ab"]
    a = rng.random((studies, repeats, nodes)) < expit(mu + u + w + runs[0])
    b = rng.random((studies, repeats, nodes)) < expit(mu + u - w + runs[1])
    return a, b, fold, truth(mu, np.sqrt(sd_node**2 + sd_model**2 + sd_run**2))


def by_run(values: np.ndarray, fold: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[studies, repeats, nodes]`` values as ``[studies, runs, nodes]`` (a run: one fold of one repeat) and the
    mask of the tests each run made."""
    studies, repeats, nodes = values.shape
    folds = int(fold.max()) + 1
    y = np.zeros((studies, repeats * folds, nodes))
    observed = np.zeros(y.shape, bool)
    for r in range(repeats):
        for f in range(folds):
            observed[:, r * folds + f] = fold[:, r] == f
            y[:, r * folds + f] = np.where(fold[:, r] == f, values[:, r], 0.0)
    return y, observed


def crossed_studies(rng: np.random.Generator, studies: int, splits: int = 10, nodes: int = 400, tested: float = 0.8,
                    mu: float = 1.5, sd_node: float = 1.5, sd_split: float = 0.3, sd_model: float = 1.0
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Correctness of A and B ``[studies, splits, nodes]``, the tested cells, and A's truth (module doc)."""
    u = sd_node * rng.standard_normal((studies, 1, nodes))
    w = sd_model * rng.standard_normal((studies, 1, nodes))
    observed = rng.random((studies, splits, nodes)) < tested
    a = rng.random(observed.shape) < expit(mu + u + w + sd_split * rng.standard_normal((studies, splits, 1)))
    b = rng.random(observed.shape) < expit(mu + u - w + sd_split * rng.standard_normal((studies, splits, 1)))
    return a, b, observed, truth(mu, np.sqrt(sd_node**2 + sd_split**2 + sd_model**2))


# The previous methods (zoo/report/stats.py before the crossed and node-level designs), for this comparison only ---

def previous_repeats_then_nodes(y: np.ndarray, observed: np.ndarray, rng: np.random.Generator, n_boot: int = 1000,
                                level: float = 0.95) -> tuple[float, float]:
    """Previous method: percentile bootstrap drawing the repeats, then the nodes within each drawn repeat
    independently (as if every repeat tested other nodes). ``y``: ``[repeats, nodes]``."""
    groups = [y[r][observed[r]] for r in range(len(y))]
    means = np.empty(n_boot)
    for i in range(n_boot):
        chosen = rng.integers(0, len(groups), len(groups))
        draws = [groups[r][rng.integers(0, len(groups[r]), len(groups[r]))] for r in chosen]
        means[i] = np.concatenate(draws).mean()
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def previous_mcnemar(a: np.ndarray, b: np.ndarray) -> float:
    """Previous method: exact McNemar over every (repeat, node) test, as if each were independent."""
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    return 1.0 if only_a + only_b == 0 else float(sp.binomtest(only_a, only_a + only_b, 0.5).pvalue)


# -------------------------------------------------------------------------------------------------------------------

def new_repeated(a: np.ndarray, b: np.ndarray, fold: np.ndarray, n_boot: int = 1000,
                 widened: bool = True) -> dict[str, np.ndarray]:
    """The report's methods on repeated studies (batched): accuracy CI of A, CI and p of A - B; ``widened=False``:
    the node bootstrap and sign-flip test alone."""
    d = a.astype(float) - b
    if not widened:
        low, high = stats.node_bootstrap_ci(a.mean(1), n_boot=n_boot, seed=1)
        d_low, d_high = stats.node_bootstrap_ci(d.mean(1), n_boot=n_boot, seed=2)
        return {"low": low, "high": high, "d_low": d_low, "d_high": d_high,
                "p": stats.sign_flip_p(d.mean(1), n_resamples=n_boot - 1, seed=3)}
    low, high, _ = stats.repeated_interval(a.mean(1), *by_run(a.astype(float), fold), n_boot=n_boot, seed=1)
    d_low, d_high, moments = stats.repeated_interval(d.mean(1), *by_run(d, fold), n_boot=n_boot, seed=2)
    return {"low": low, "high": high, "d_low": d_low, "d_high": d_high,
            "p": stats.repeated_p(d.mean(1), moments, n_resamples=n_boot - 1, seed=3)}


def new_crossed(a: np.ndarray, b: np.ndarray, observed: np.ndarray) -> dict[str, np.ndarray]:
    """The report's methods on crossed studies (batched)."""
    low, high = stats.crossed_ci(*stats.crossed_moments(a, observed))
    moments = stats.crossed_moments(a.astype(float) - b, observed)
    d_low, d_high = stats.crossed_ci(*moments)
    return {"low": low, "high": high, "d_low": d_low, "d_high": d_high, "p": stats.crossed_p(*moments)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=1000)
    parser.add_argument("--old-studies", type=int, default=300, help="studies for the (slow) previous methods")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    rows = []

    a, b, fold, mu = repeated_studies(rng, args.studies, **NYC)
    for widened, name in ((True, "new: node bootstrap (BCa) widened to crossed runs x nodes / larger p of sign-flip "
                                 "and crossed t"), (False, "node bootstrap (BCa) / sign-flip alone")):
        new = new_repeated(a, b, fold, widened=widened)
        rows.append(("repeated (NYC-like)", name, _cover(new["low"], new["high"], mu),
                     _cover(new["d_low"], new["d_high"], 0.0), float((new["p"] < 0.05).mean())))
    old = [previous_repeats_then_nodes(s, np.ones_like(s), rng) for s in a[:args.old_studies]]
    old_d = [previous_repeats_then_nodes(x.astype(float) - y, np.ones_like(x), rng)
             for x, y in zip(a[:args.old_studies], b[:args.old_studies], strict=True)]
    mcn = [previous_mcnemar(x, y) for x, y in zip(a[:args.old_studies], b[:args.old_studies], strict=True)]
    rows.append(("repeated (NYC-like)", "previous: repeats then nodes / McNemar over all tests",
                 _cover(*np.array(old).T, mu), _cover(*np.array(old_d).T, 0.0), float((np.array(mcn) < 0.05).mean())))

    a, b, observed, mu = crossed_studies(rng, args.studies, **CORA)
    new = new_crossed(a, b, observed)
    rows.append(("crossed (Cora-like)", "new: crossed method of moments, t (Satterthwaite)",
                 _cover(new["low"], new["high"], mu), _cover(new["d_low"], new["d_high"], 0.0),
                 float((new["p"] < 0.05).mean())))
    old = [previous_repeats_then_nodes(s, o, rng) for s, o in zip(a[:args.old_studies], observed, strict=False)]
    old_d = [previous_repeats_then_nodes(x.astype(float) - y, o, rng)
             for x, y, o in zip(a[:args.old_studies], b, observed, strict=False)]
    mcn = [previous_mcnemar(x[o], y[o]) for x, y, o in zip(a[:args.old_studies], b, observed, strict=False)]
    rows.append(("crossed (Cora-like)", "previous: repeats then nodes / McNemar over all tests",
                 _cover(*np.array(old).T, mu), _cover(*np.array(old_d).T, 0.0), float((np.array(mcn) < 0.05).mean())))

    print("| design | method | accuracy CI covers truth | difference CI covers 0 (null) | test rejects a true "
          "null (p < 0.05) |\n|---|---|---|---|---|")
    for design, method, cover, cover_d, fpr in rows:
        print(f"| {design} | {method} | {cover:.3f} | {cover_d:.3f} | {fpr:.3f} |")
    print(f"\nNominal 95 % intervals; {args.studies} studies for the new methods (Monte Carlo SE of a share near 0.95 "
          f"or 0.05 about {np.sqrt(0.05 * 0.95 / args.studies):.3f}), {args.old_studies} for the previous ones (about "
          f"{np.sqrt(0.05 * 0.95 / args.old_studies):.3f}).")


def _cover(low: np.ndarray, high: np.ndarray, value: float) -> float:
    return float(((np.asarray(low) <= value) & (value <= np.asarray(high))).mean())


if __name__ == "__main__":
    main()
