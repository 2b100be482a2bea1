"""The tables: a leaderboard of like runs, test accuracy per seed, and paired statistics per seed and per node.

* Runs are grouped by their effective config (:mod:`zoo.report.runs`): only like runs are ever averaged.
* Groups are compared only on the same splits: a *family* is a dataset and the settings that shape its split
  (``data.split``'s kind, fractions, folds...), and within it runs pair up by split (seed, split seed, fold,
  repeat).
* :func:`per_seed` is the one per-seed table: test accuracy per split (rows) and group (columns).
* :func:`seed_summary` compares each group with the best one over their shared seeds (bootstrap over seeds);
  :func:`node_pairs` compares every pair of groups node by node where runs wrote ``predictions.csv``.
"""

import json
import logging
import math
from pathlib import Path
from typing import Any

import pandas as pd

from zoo.files import PREDICTIONS_FILE
from zoo.report import stats
from zoo.report.runs import SPLIT_SHAPE, Run, finite

log = logging.getLogger(__name__)

METRICS = {"test_acc": "test/acc", "params": "params", "fit_seconds": "fit_seconds", "epochs": "epochs"}
MIN_SEEDS = 5  # fewer paired seeds: a percentile bootstrap over seeds gives no verdict
ACC_TOLERANCE = 1e-4  # predictions.csv and metrics.json must agree on the test accuracy
SEED_METHOD = "t interval and t test over paired seeds, Holm over the table"
ALL_PAIRS_UP_TO = 12  # groups in a table; with more, each group is compared node by node with the best one only


def frame(runs: list[Run]) -> pd.DataFrame:
    """One row per run: names, status, config, split, metrics, and its group, family and split keys."""
    rows = []
    for run in runs:
        split = run.split or {}
        shape = {k: run.config[k] for k in SPLIT_SHAPE if k in run.config}
        row = {"run": str(run.path), "status": run.status, "reason": run.reason, "model": run.model,
               "data": run.data, "kind": run.kind, "config": run.config, **{k: split.get(k) for k in
                                                                            ("seed", "split_seed", "fold", "repeat")}}
        row["key"] = json.dumps([split.get(k) for k in ("seed", "split_seed", "fold", "repeat")])
        row["unit"] = json.dumps([split.get(k) for k in ("seed", "split_seed", "repeat")])  # all folds of a repeat
        row["family"] = json.dumps([run.data, shape], sort_keys=True)
        row["group"] = json.dumps([run.model, run.data, run.kind, run.config], sort_keys=True)
        base = {k: v for k, v in run.config.items() if k not in run.tuned}
        row.update(tuned=run.tuned, job=run.job, base_config=base, choice={k: run.config.get(k, "-") for k in run.tuned},
                   base=json.dumps([run.model, run.data, run.kind, base], sort_keys=True),
                   val_score=validation_score(run.config, run.metrics))
        row.update({col: run.metrics.get(key) for col, key in METRICS.items()})
        rows.append(row)
    runs_df = pd.DataFrame(rows, columns=["run", "status", "reason", "model", "data", "kind", "config", "seed",
                                          "split_seed", "fold", "repeat", "key", "unit", "family", "group",
                                          "tuned", "job", "base_config", "choice", "base", "val_score", *METRICS])
    for col in METRICS:
        runs_df[col] = pd.to_numeric(runs_df[col], errors="coerce").astype(float)
    done = runs_df.status == "done"
    first = runs_df[done].drop_duplicates(["group", "key"])
    for i in runs_df.index[done & ~runs_df.index.isin(first.index)]:  # the same config on the same split again
        same = first[(first.group == runs_df.group[i]) & (first.key == runs_df.key[i])].run.iloc[0]
        runs_df.loc[i, ["status", "reason"]] = ["duplicate", f"same config and split as {same}"]
    return runs_df


def validation_score(config: dict[str, str], metrics: dict[str, Any]) -> float:
    """How well a run's TESTED weights did on its validation nodes, higher is better (NaN: not known).

    The checkpoint callback's monitored value of the tested checkpoint (``<monitor>_tested`` in ``metrics.json``;
    negated when minimised, e.g. GAT's ``val/loss``), or ``val/acc_best`` for a ``val/acc`` monitor; the final
    ``val/acc`` when no checkpoint was picked (``monitor: null``: the final weights are tested).
    """
    monitor = config.get("callbacks.model_checkpoint.monitor", "None")
    sign = -1.0 if config.get("callbacks.model_checkpoint.mode") == "min" else 1.0
    if monitor == "None":
        value, sign = metrics.get("val/acc"), 1.0
    else:
        value = metrics.get(f"{monitor}_tested", metrics.get("val/acc_best") if monitor == "val/acc" else None)
    return sign * float(value) if finite(value) else math.nan


def select(runs: pd.DataFrame) -> pd.DataFrame:
    """Nested selection, in place: of the runs of a settings grid (the same config but the grid's keys) on one split,
    keep the one whose tested weights score best on that split's validation nodes (:func:`validation_score`; ties:
    the first listed), as the group of the config without the grid's keys. The others become ``not chosen``. Test
    results never enter a choice.

    Returns one row per choice: the model's group, the split, the chosen settings and their validation score.
    """
    done = runs[(runs.status == "done") & runs.tuned.map(bool)]
    rows = []
    for (_, key), part in done.groupby(["base", "key"], sort=False):
        order = part.assign(_score=part.val_score.fillna(-math.inf), _job=part.job.fillna(math.inf))
        order = order.sort_values(["_score", "_job", "run"], ascending=[False, True, True])
        win = order.index[0]
        for i in order.index[1:]:
            runs.loc[i, ["status", "reason"]] = ["not chosen", f"grid point not chosen on validation ({runs.run[win]})"]
        runs.at[win, "group"], runs.at[win, "config"] = runs.base[win], runs.base_config[win]
        shape = {k: runs.config[win][k] for k in SPLIT_SHAPE if k in runs.config[win]}
        rows.append({"model": runs.model[win], "data": runs.data[win], "family": runs.family[win],
                     "group": runs.base[win], **shape, "split": key, "candidates": len(part), "run": runs.run[win],
                     **runs.choice[win], "val_score": runs.val_score[win], "test_acc": runs.test_acc[win]})
    table = pd.DataFrame(rows)
    constant = [k for k in SPLIT_SHAPE if k in table and table[k].nunique(dropna=False) <= 1]
    return table.drop(columns=constant)  # the split settings that vary (e.g. the label rate) stay


def differing_keys(runs: pd.DataFrame) -> list[str]:
    """Config keys whose values differ between the groups of ``runs``.

    ``model.*`` keys count only between groups of the same model and ``data.*`` keys only between groups of the same
    data (another model or dataset differs everywhere there; its name already says so); other keys count between
    any groups.
    """
    groups = runs.drop_duplicates("group")
    keys: set[str] = set()
    for section in ("model", "data", None):
        parts = groups.groupby(section) if section else [(None, groups)]
        for _, part in parts:
            configs = list(part.config)
            for key in set().union(*configs):
                top = key.split(".", 1)[0]
                if (top == section if section else top not in ("model", "data")) and len(
                        {c.get(key, "-") for c in configs}) > 1:
                    keys.add(key)
    return sorted(keys)


def label(model: str, kind: str, values: dict[str, str]) -> str:
    """``mlp``, ``mlp (trainer.max_epochs=5)`` or ``logreg (eval)``: the model and what sets its group apart."""
    parts = (["eval"] if kind == "eval" else []) + [f"{k}={v}" for k, v in values.items() if v != "-"]
    return f"{model} ({', '.join(parts)})" if parts else str(model)


def leaderboard(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per group of finished runs, best mean test accuracy first per dataset; ``evaluates``: for a group of
    evaluations, the label of the training group whose checkpoints they tested (same model, data and config)."""
    done = runs[runs.status == "done"]
    keys = differing_keys(done) if len(done) else []
    rows = []
    for group, part in done.groupby("group", sort=False):
        n, config = len(part), part.config.iloc[0]
        values = {k: config.get(k, "-") for k in keys}
        rows.append({
            "model": part.model.iloc[0], "data": part.data.iloc[0], "kind": part.kind.iloc[0], **values,
            "runs": n, "failed": int(((runs.group == group) & (runs.status == "failed")).sum()),
            "test_acc_mean": part.test_acc.mean(), "test_acc_std": part.test_acc.std() if n >= 2 else math.nan,
            "params": part.params.iloc[0], "fit_seconds": part.fit_seconds.mean(), "epochs": part.epochs.mean(),
            "seeds": " ".join(f"{s:g}" for s in sorted(part.seed.dropna().unique())),
            "label": "", "group": group,
            "family": part.family.iloc[0], "config": config})
    columns = ["model", "data", "kind", *keys, "runs", "failed", "test_acc_mean", "test_acc_std", "params",
               "fit_seconds", "epochs", "seeds", "label", "group", "family", "config"]
    table = pd.DataFrame(rows, columns=columns)  # "evaluates" is added below
    table = table.sort_values(["data", "test_acc_mean", "label"], ascending=[True, False, True])
    table = table.reset_index(drop=True)
    table["label"] = short_labels(table)
    trained = {json.dumps([r.model, r.data, r.config], sort_keys=True): r.label
               for r in table.itertuples() if r.kind == "train"}
    table["evaluates"] = [trained.get(json.dumps([r.model, r.data, r.config], sort_keys=True), "")
                          if r.kind == "eval" else "" for r in table.itertuples()]
    table.attrs["keys"] = keys
    return table


def families(table: pd.DataFrame) -> list[tuple[str, str, str]]:
    """``(family, title, file stem)`` per family: the data name, plus the split settings that tell its families
    apart (``nyc_zip (data.split=KFoldSplit)``: a ``_target_`` by its class name)."""
    out = []
    for data, part in table.groupby("data", sort=True):
        fams = list(dict.fromkeys(part.family))
        shapes = [json.loads(f)[1] for f in fams]
        differ = sorted(k for k in set().union(*shapes) if len({s.get(k) for s in shapes}) > 1)
        for i, (fam, shape) in enumerate(zip(fams, shapes, strict=True)):
            settings = ", ".join(_setting(k, shape[k]) for k in differ if shape.get(k, "None") != "None")
            title = f"{data} ({settings})" if differ else str(data)
            out.append((fam, title, str(data) if i == 0 else f"{data}_{i + 1}"))
    return out


def _setting(key: str, value: str) -> str:
    """``key=value``; a ``_target_`` as its node and class name (``data.split=KFoldSplit``)."""
    if key.endswith("._target_"):
        return f"{key.removesuffix('._target_')}={value.rsplit('.', 1)[-1]}"
    return f"{key}={value}"


def short_labels(groups: pd.DataFrame) -> list[str]:
    """A label per row of ``groups`` (leaderboard rows): the model, plus the keys that tell it from the other groups
    of the same model, data and kind."""
    keys_of = {}
    for name, part in groups.groupby(["model", "data", "kind"], dropna=False):
        configs = list(part.config)
        keys_of[name] = sorted(k for k in set().union(*configs) if len({c.get(k, "-") for c in configs}) > 1)
    return [label(r.model, r.kind, {k: r.config.get(k, "-") for k in keys_of[(r.model, r.data, r.kind)]})
            for r in groups.itertuples()]


def family_table(table: pd.DataFrame, family: str) -> pd.DataFrame:
    """The leaderboard rows of ``family`` (one dataset and split shape), labelled by what differs within it."""
    part = table[table.family == family].copy()
    part["label"] = short_labels(part)
    return part


def _index_levels(done: pd.DataFrame) -> list[str]:
    levels = ["seed"]
    if any(s != t for s, t in zip(done.seed, done.split_seed, strict=True) if t is not None):
        levels.append("split_seed")
    return levels + [k for k in ("fold", "repeat") if done[k].notna().any()]


def _plain(value: Any) -> Any:
    """A split id as written: ``3`` rather than ``3.0``, ``None`` for a missing one."""
    if isinstance(value, float):
        return None if math.isnan(value) else int(value) if value.is_integer() else value
    return value


def _sort_key(value: Any) -> tuple:
    """Numbers first, then text, then missing ids."""
    if isinstance(value, int | float):
        return (0, value, "")
    return (1, 0, str(value)) if value is not None else (2, 0, "")


def per_seed(runs: pd.DataFrame, table: pd.DataFrame, family: str) -> pd.DataFrame:
    """Test accuracy per split (rows: seed, and split seed, fold and repeat where they vary) and group (columns,
    by label, best mean first) of the finished runs of ``family``."""
    order = family_table(table, family)
    done = runs[(runs.status == "done") & (runs.family == family)]
    levels = _index_levels(done)
    values: dict[str, dict[tuple, float]] = {}
    for row in done.itertuples():
        name = order.label[order.group == row.group].iloc[0]
        values.setdefault(name, {})[tuple(_plain(getattr(row, k)) for k in levels)] = row.test_acc
    index = sorted({k for col in values.values() for k in col}, key=lambda k: tuple(map(_sort_key, k)))
    wide = pd.DataFrame({name: [values.get(name, {}).get(k, math.nan) for k in index] for name in order.label},
                        index=pd.MultiIndex.from_tuples(index, names=levels) if len(levels) > 1 else pd.Index(
                            [k[0] for k in index], name="seed"))
    return wide


def seed_verdict(ci: tuple[float, float] | None, p_holm: float, n: int, a: str, b: str, alpha: float) -> str:
    """The verdict of a seed-level CI and its Holm-adjusted p: none below :data:`MIN_SEEDS` paired seeds."""
    if ci is None or n < MIN_SEEDS:
        return f"{stats.NOT_SEPARABLE} ({n} paired seed{'s' if n != 1 else ''}; a verdict needs {MIN_SEEDS})"
    return stats.verdict(ci, p_holm, a, b, alpha)


def seed_summary(wide: pd.DataFrame, *, level: float = 0.95) -> pd.DataFrame:
    """Per group: seeds, mean ± std, and the paired difference to the best group over the seeds both ran (mean ±
    std, wins / ties / losses, t interval over seeds, t test p and its Holm adjustment over the table, verdict).
    The reference is the best group (``wide``: best mean first) that ran enough seeds for a verdict
    (:data:`MIN_SEEDS`), so that a group run on a few seeds only is compared, not compared against."""
    counts = wide.notna().sum()
    best = next((name for name in wide.columns if counts[name] >= MIN_SEEDS), wide.columns[0])
    rows = []
    for name in wide.columns:
        diff = (wide[name] - wide[best]).dropna()
        found = stats.mean_ci(diff.to_numpy(), level=level) if name != best and len(diff) >= 2 else None
        rows.append({"model": name, "seeds": int(wide[name].notna().sum()), "mean": wide[name].mean(),
                     "std": wide[name].std(), "paired_seeds": len(diff), "diff_mean": diff.mean(),
                     "diff_std": diff.std(), "wins": int((diff > 0).sum()), "ties": int((diff == 0).sum()),
                     "losses": int((diff < 0).sum()), "ci_low": found[0] if found else math.nan,
                     "ci_high": found[1] if found else math.nan, "p": found[2] if found else math.nan})
    summary = pd.DataFrame(rows)
    summary["p_holm"] = stats.holm(summary.p.to_numpy()) if len(summary) else []
    summary["verdict"] = [
        "" if r.model == best else seed_verdict(None if math.isnan(r.ci_low) else (r.ci_low, r.ci_high), r.p_holm,
                                                 r.paired_seeds, r.model, best, 1 - level)
        for r in summary.itertuples()]
    summary["method"] = SEED_METHOD
    summary.attrs["best"] = best
    return summary


def read_predictions(run_dir: Path, test_acc: float) -> pd.DataFrame | None:
    """The test rows of ``<run dir>/predictions.csv`` as ``node``, ``label``, ``correct``; ``None`` (one warning)
    if it is missing, unreadable, or disagrees with the run's ``test/acc``."""
    path = Path(run_dir) / PREDICTIONS_FILE
    if not path.is_file():
        return None
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as err:
        log.warning("Not used: %s cannot be read (%s).", path, str(err).splitlines()[0] if str(err) else err)
        return None
    node = next((c for c in ("node", "zip") if c in table), None)
    truth = next((c for c in ("label", "true_borough") if c in table), None)
    pred = next((c for c in ("prediction", "predicted_borough") if c in table), None)
    if node is None or "split" not in table or ("correct" not in table and not (truth and pred)):
        log.warning("Not used: %s has no node, split and correct (or label and prediction) columns.", path)
        return None
    test = table[table.split == "test"]
    correct = test["correct"].str.lower().isin(("true", "1")) if "correct" in test else test[truth] == test[pred]
    out = pd.DataFrame({"node": test[node].to_numpy(), "label": test[truth].to_numpy() if truth else "",
                        "correct": correct.to_numpy(bool)})
    if out.empty or out.node.duplicated().any():
        log.warning("Not used: %s has %s.", path, "no test rows" if out.empty else "a node listed twice")
        return None
    if finite(test_acc) and abs(out.correct.mean() - test_acc) > ACC_TOLERANCE:
        log.warning("Not used: %s gives test accuracy %.4f, but metrics.json says %.4f (another test's file?).",
                    path, out.correct.mean(), test_acc)
        return None
    return out


def split_name(key: str) -> str:
    """A split key (``[seed, split_seed, fold, repeat]``) as ``seed=3, fold=1``."""
    values = dict(zip(("seed", "split_seed", "fold", "repeat"), map(_plain, json.loads(key)), strict=True))
    if values["split_seed"] == values["seed"]:
        del values["split_seed"]  # split_seed: ${seed}
    return ", ".join(f"{n}={v}" for n, v in values.items() if v is not None)


def _paired_nodes(pa: dict[str, tuple[str, pd.DataFrame]], pb: dict[str, tuple[str, pd.DataFrame]]
                  ) -> tuple[pd.DataFrame | None, int]:
    """The test nodes of the splits both groups ran (``correct_a``, ``correct_b``, ``unit``: the split, all folds of a
    k-fold repeat; ``run``: the run's own split key, ``node``), and how many
    shared splits were left out because their test nodes or labels differ."""
    parts, mismatched = [], 0
    for key in sorted(set(pa) & set(pb)):
        (unit, a), b = pa[key], pb[key][1]
        both = a.merge(b, on="node", suffixes=("_a", "_b"))
        if len(both) != len(a) or len(both) != len(b) or (both.label_a != both.label_b).any():
            mismatched += 1  # not the same test nodes: not a pair
            continue
        parts.append(both.assign(unit=unit, run=key))
    return (pd.concat(parts, ignore_index=True) if parts else None), mismatched


def node_pairs(runs: pd.DataFrame, table: pd.DataFrame, family: str, *, n_boot: int = 10_000,
               level: float = 0.95) -> pd.DataFrame:
    """Every pair of groups of ``family`` (better mean first; with more than :data:`ALL_PAIRS_UP_TO` groups, the
    best one against each other), compared node by node on the splits both tested (:func:`zoo.report.stats.compare`,
    the method of the tests' design), Holm-adjusted over the table. A split both groups ran but one of them left
    without usable ``predictions.csv`` is named (``splits_missing``) and the verdict says what it rests on."""
    order = family_table(table, family)
    done = runs[(runs.status == "done") & (runs.family == family)]
    preds: dict[str, dict[str, tuple[str, pd.DataFrame]]] = {}
    ran: dict[str, set[str]] = {}
    for row in done.itertuples():
        ran.setdefault(row.group, set()).add(row.key)
        found = read_predictions(Path(row.run), row.test_acc)
        if found is not None:
            preds.setdefault(row.group, {})[row.key] = (row.unit, found)
    named = list(zip(order.group, order.label, strict=True))
    pairs = [(x, y) for i, x in enumerate(named) for y in named[i + 1:]]
    if len(named) > ALL_PAIRS_UP_TO:
        pairs = pairs[:len(named) - 1]  # the best group against each other one
    rows = []
    for (ga, la), (gb, lb) in pairs:
        pa, pb = preds.get(ga, {}), preds.get(gb, {})
        both, mismatched = _paired_nodes(pa, pb)
        if mismatched:
            log.warning("%s vs %s: %d split(s) left out, their test nodes or labels differ.", la, lb, mismatched)
        if both is None:
            continue
        shared = ran.get(ga, set()) & ran.get(gb, set())
        missing = sorted(shared - (set(pa) & set(pb)))
        if missing:
            log.warning("%s vs %s: %d split(s) without predictions.csv left out (%s).", la, lb, len(missing),
                        "; ".join(split_name(k) for k in missing))
        c = stats.compare(both.correct_a.to_numpy(bool), both.correct_b.to_numpy(bool), both.unit.to_numpy(),
                          both.node.to_numpy(), runs=both.run.to_numpy(), names=(la, lb), n_boot=n_boot, level=level)
        row = c.as_dict()
        row.update(splits_left_out=mismatched, splits_missing="; ".join(split_name(k) for k in missing),
                   splits_shared=len(shared), splits_used=len(set(pa) & set(pb)) - mismatched)
        rows.append(row)
    out = pd.DataFrame(rows, columns=PAIR_COLUMNS[:-2] if not rows else None)
    if len(out):
        out["p_holm"] = stats.holm(out.p.to_numpy())
        out["verdict"] = [_pair_verdict(r, level) for r in out.itertuples()]
        out = out[PAIR_COLUMNS]
    out.attrs["groups"] = len(named)
    return out


PAIR_COLUMNS = ["a", "b", "design", "splits", "nodes", "pairs", "acc_a", "acc_b", "difference", "ci_low", "ci_high",
                "level", "interval", "test", "p", "wins", "ties", "losses", "split_wins", "split_ties",
                "split_losses", "resolution", "granularity", "splits_shared", "splits_used", "splits_left_out",
                "splits_missing", "p_holm", "verdict"]


def _pair_verdict(r: Any, level: float) -> str:
    text = stats.verdict((r.ci_low, r.ci_high), r.p_holm, r.a, r.b, 1 - level)
    if r.splits_missing or r.splits_left_out:
        text += (f" (rests on {r.splits_used} of {r.splits_shared} shared splits; left out: "
                 f"{r.splits_missing or ''}{'; ' if r.splits_missing and r.splits_left_out else ''}"
                 f"{f'{r.splits_left_out} with other test nodes' if r.splits_left_out else ''})")
    return text


def best_run(runs: pd.DataFrame, group: str) -> Path:
    """The run of ``group`` with the median test accuracy (the lower middle one)."""
    done = runs[(runs.status == "done") & (runs.group == group)].sort_values(["test_acc", "seed"])
    return Path(done.run.iloc[(len(done) - 1) // 2])


# Markdown ---------------------------------------------------------------------------------------------------------

def _fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    text = format(value, spec)
    return text.replace("-0.000", "+0.000") if text.startswith("-0.000") and float(text) == 0 else text


def _ci(low: float, high: float) -> str:
    return "-" if math.isnan(low) else f"[{_fmt(low, '+.3f')}, {_fmt(high, '+.3f')}]"


def _rows(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(r) + " |" for r in rows)]


def leaderboard_markdown(table: pd.DataFrame, runs: pd.DataFrame) -> str:
    lines = ["# Leaderboard", ""]
    cells = []
    for _, r in table.iterrows():
        acc = f"{r.test_acc_mean:.4f}" + (f" ± {r.test_acc_std:.4f}" if r.runs >= 2 else "")
        cells.append([r.label, r.data, acc, str(r.runs), str(r.failed), _fmt(r.params, ",.0f"),
                      _fmt(r.fit_seconds, ".1f"), _fmt(r.epochs, "g"), r.seeds])
    lines += _rows(["model", "data", "test acc", "n", "failed", "params", "fit time (s)", "epochs", "seeds"], cells)
    lines += ["", "Mean over seeds and splits; ± is the sample std, shown for n >= 2 runs. Groups share their whole "
              "effective config except the seed and split; a model's label adds the keys that tell its groups apart "
              "(every key that differs: leaderboard.csv). Unlike runs are never averaged."]
    for data, part in table.groupby("data"):
        spread = part[part.runs >= 2]
        if len(spread):
            s, n = spread.test_acc_std.median(), spread.runs.median()
            lines.append(f"Resolution ({data}): two means of this table differ beyond noise only by more than about "
                         f"±{1.96 * s * math.sqrt(2 / n):.3f} (unpaired, 95 %, median std and n); paired.md resolves "
                         f"finer.")
        else:
            lines.append(f"Resolution ({data}): none, one run per group (no spread measured).")
    evals = table[table.evaluates != ""]
    for r in evals.itertuples():
        train = table[(table.label == r.evaluates) & (table.data == r.data) & (table.kind == "train")].iloc[0]
        lines.append(f"Evaluation ({r.data}): {r.label} tested the checkpoints of {r.evaluates} (same effective "
                     f"config and splits): {r.test_acc_mean:.4f} against {train.test_acc_mean:.4f} when trained.")
    unchosen = runs[runs.status == "not chosen"]
    if len(unchosen):
        lines.append(f"Settings grids: for each model and split, the grid point with the best validation score was "
                     f"kept (nested selection; test nodes never enter the choice); {len(unchosen)} other grid runs "
                     f"are not counted. The choices: selection.csv.")
    left_out = runs[~runs.status.isin(("done", "not chosen"))]
    if len(left_out):
        lines += ["", f"## Not counted ({len(left_out)})", ""]
        lines += _rows(["run", "status", "reason"], [[r.run, r.status, r.reason] for r in left_out.itertuples()])
    return "\n".join(lines) + "\n"


def seeds_markdown(title: str, wide: pd.DataFrame, summary: pd.DataFrame, level: float) -> str:
    best, pct = summary.attrs["best"], f"{level:.0%}"
    lines = [f"## {title}: test accuracy, paired by seed (same split for every model)", ""]
    cells = []
    for r in summary.itertuples(index=False):
        is_best = r.model == best
        diff = "-" if is_best else f"{_fmt(r.diff_mean, '+.3f')} ± {_fmt(0.0 if pd.isna(r.diff_std) else r.diff_std, '.3f')}"
        wtl = "-" if is_best else f"{r.wins} / {r.ties} / {r.losses}"
        ci = "-" if is_best else f"{_ci(r.ci_low, r.ci_high)} {r.verdict}"
        cells.append([r.model, str(r.seeds), f"{r.mean:.3f} ± {0.0 if pd.isna(r.std) else r.std:.3f}", diff, wtl, ci])
    lines += _rows(["model", "seeds", "mean ± std", f"paired diff. to {best} (mean ± std)", "wins / ties / losses",
                    f"{pct} CI over seeds, verdict", "p (Holm)"],
                   [c + [_fmt(p, ".2g")] for c, p in zip(cells, summary.p_holm, strict=True)])
    widths = (summary.ci_high - summary.ci_low).dropna() / 2
    resolution = f"±{widths.median():.3f} (median CI half-width)" if len(widths) else "none (fewer than 2 paired seeds)"
    lines += ["", f"Resolution: one accuracy per run; the differences are over the seeds both models ran: a t interval "
              f"and t test over the paired seeds, Holm's correction over this table ({MIN_SEEDS}+ paired seeds, a "
              f"Holm-adjusted p below {1 - level:g} and a CI excluding 0 for a verdict); resolution {resolution}.", ""]
    index_names = [n or "seed" for n in wide.index.names]
    cells = [[*(str(v) for v in (k if isinstance(k, tuple) else (k,))), *("-" if pd.isna(v) else f"{v:.3f}" for v in row)]
             for k, row in zip(wide.index, wide.to_numpy(), strict=True)]
    lines += _rows([*index_names, *map(str, wide.columns)], cells)
    return "\n".join(lines) + "\n"


def selection_markdown(selection: pd.DataFrame) -> str:
    """How often each model's grid points were chosen (per split, on validation alone)."""
    shape = [k for k in SPLIT_SHAPE if k in selection.columns]
    keys = [c for c in selection.columns if c not in ("model", "data", "family", "group", "split", "candidates", "run",
                                                      "val_score", "test_acc", *shape)]
    lines = ["## Settings chosen on validation (nested selection)", ""]
    cells = []
    for (data, model, *at), part in selection.groupby(["data", "model", *shape], sort=True, dropna=False):
        choices = part.apply(lambda r: ", ".join(f"{k}={r[k]}" for k in keys if not pd.isna(r[k]) and r[k] != "-"),
                             axis=1)
        counts = ", ".join(f"{c} ({n}×)" for c, n in choices.value_counts().items())
        cells.append([str(model), str(data), *map(str, at), str(len(part)), str(int(part.candidates.max())), counts])
    lines += _rows(["model", "data", *shape, "splits", "grid points", "chosen (times)"], cells)
    lines += ["", "Per model and split, every grid point was trained, and the one whose tested weights scored best on "
              "that split's validation nodes was kept (ties: the first listed); its test accuracy is the one reported. "
              "Per split and rate: selection.csv.", ""]
    return "\n".join(lines)


def pairs_markdown(title: str, pairs: pd.DataFrame, level: float) -> str:
    pct = f"{level:.0%}"
    lines = [f"## {title}: paired by split and node", ""]
    cells = []
    for r in pairs.itertuples(index=False):
        cells.append([r.a, r.b, r.design, f"{r.splits} × {r.nodes} ({r.pairs})", f"{r.acc_a:.3f}", f"{r.acc_b:.3f}",
                      f"{_fmt(r.difference, '+.3f')} {_ci(r.ci_low, r.ci_high)}", _fmt(r.p, ".2g"),
                      _fmt(r.p_holm, ".2g"), r.verdict, f"±{r.resolution:.3f}", f"{r.wins} / {r.ties} / {r.losses}",
                      f"{r.split_wins} / {r.split_ties} / {r.split_losses}" if r.splits >= 2 else "-",
                      r.splits_missing or "-"])
    lines += _rows(["A", "B", "design", "splits × nodes (tests)", "acc A", "acc B", f"A − B [{pct} CI]", "p",
                    "p (Holm)", "verdict", "resolution", "tests W / T / L", "splits W / T / L",
                    "splits without predictions.csv"], cells)
    if pairs.attrs.get("groups", 0) > ALL_PAIRS_UP_TO:
        lines += ["", f"{pairs.attrs['groups']} models: each is compared with the best one only."]
    methods = pairs.drop_duplicates("design")
    lines += ["", "Methods (by design, read from the tests): " + "; ".join(
        f"{r.design}: {pct} CI by {r.interval}, p by {r.test}" for r in methods.itertuples()) + ".",
        f"Holm's correction over this table's {len(pairs)} comparison{'s' if len(pairs) != 1 else ''} (family-wise "
        f"error {1 - level:.0%}): a pair is separable only when its Holm-adjusted p is below {1 - level:g} and its CI "
        f"excludes 0; else \"{stats.NOT_SEPARABLE}\".",
        "Designs: single = one split, each node tested once; repeated = every split (k-fold repeat with all its "
        "folds) tests the same nodes, the node is the unit, carrying all its repeats; crossed = splits test different "
        "overlapping node sets, splits and nodes are crossed random effects (in the repeated design each run, e.g. one "
        "fold's model, is crossed with the nodes too). The CI is for the expected difference "
        "over the population of nodes (and of splits). Resolution: each row's CI half-width (one node is 1/nodes of "
        "accuracy). A split both models ran without a usable predictions.csv is named, and the verdict says what it "
        "rests on."]
    return "\n".join(lines) + "\n"
