"""Node splits (datamodules/splits.py) and their wiring into the graph DataModules through the ``data/split``
config group and its ``data.split.*`` keys."""

import pytest
import torch

from datamodules.cora import CoraDataModule
from datamodules.nyc_zip import NYCZipDataModule
from datamodules.splits import (
    KFoldSplit,
    PerClassSplit,
    PublicSplit,
    RandomSplit,
    kfold_assignment,
    labelled_subset,
    per_class_masks,
    random_split_masks,
    rate_counts,
    stratified_kfold_masks,
)
from zoo.errors import ConfigError
from zoo.registry import check_keys
from zoo.run.facts import load_data

# Unequal classes, one of them just at the 5-fold minimum, labels in no particular order.
SIZES = (23, 17, 9, 5, 40)
Y = torch.cat([torch.full((n,), c) for c, n in enumerate(SIZES)])[torch.randperm(sum(SIZES),
                                                                                 generator=torch.Generator().manual_seed(0))]


def _disjoint_cover(masks: tuple[torch.Tensor, ...]) -> bool:
    return bool((sum(m.int() for m in masks) == 1).all())


# ------------------------------------------------------------------------------------------ k-fold
@pytest.mark.parametrize("folds", [3, 5, 7])
def test_kfold_tests_and_validates_every_node_once_per_repeat(folds):
    y = Y if folds <= 5 else torch.arange(70) % 4
    for repeat in range(3):
        splits = [stratified_kfold_masks(y, folds, k, repeat, seed=11) for k in range(folds)]
        assert all(_disjoint_cover(s) for s in splits)  # never a node in two sets, none left out
        assert (sum(s[2].int() for s in splits) == 1).all()  # every node tested once
        assert (sum(s[1].int() for s in splits) == 1).all()  # and validated once
        for k in range(folds):  # validation is the next fold's test fold
            assert torch.equal(splits[k][1], splits[(k + 1) % folds][2])


def test_kfold_keeps_each_class_within_one_node_per_fold():
    for repeat in range(4):
        fold = kfold_assignment(Y, 5, repeat, seed=2)
        sizes = torch.bincount(fold, minlength=5)
        assert int(sizes.max() - sizes.min()) <= 1
        for c, n in enumerate(SIZES):
            per_fold = torch.bincount(fold[Y.eq(c)], minlength=5)
            assert set(per_fold.tolist()) <= {n // 5, -(-n // 5)}, (c, per_fold)
        train, _, _ = stratified_kfold_masks(Y, 5, 0, repeat, seed=2)
        for c, n in enumerate(SIZES):  # 3 of 5 folds of each class
            assert n - 2 * -(-n // 5) <= int(train[Y.eq(c)].sum()) <= n - 2 * (n // 5)


def test_kfold_is_seeded_by_seed_and_repeat():
    same = [kfold_assignment(Y, 5, 1, seed=4) for _ in range(2)]
    assert torch.equal(*same)
    assert not torch.equal(same[0], kfold_assignment(Y, 5, 2, seed=4))  # another repeat: another partition
    assert not torch.equal(same[0], kfold_assignment(Y, 5, 1, seed=5))
    # Repeats are fresh partitions: the test folds of two repeats overlap far less than entirely.
    a, b = stratified_kfold_masks(Y, 5, 0, 0, 4)[2], stratified_kfold_masks(Y, 5, 0, 1, 4)[2]
    assert int((a & b).sum()) < int(a.sum()) - 5


@pytest.mark.parametrize(("args", "message"), [
    ((2, 0, 0), r"^folds=2: must be >= 3 \(a test fold, a validation fold and training folds"),
    ((5, 5, 0), r"^fold=5: must be an integer in 0..4 \(folds=5\)"),
    ((5, -1, 0), "^fold=-1: must be an integer in 0..4"),
    ((5, 0, -1), "^repeat=-1: must be >= 0"),
    ((6, 0, 0), "class 3 has 5 nodes, fewer than data.split.folds=6: .*use data.split.folds=5 or fewer"),
    ((5, 1.5, 0), "^fold=1.5: must be an integer"),
])
def test_kfold_refuses_bad_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        stratified_kfold_masks(Y, *args, seed=0)


# ------------------------------------------------------------------------------------------ per class, random
def test_per_class_counts_are_exact_and_the_rest_is_test():
    y = torch.arange(700) % 7
    train, val, test = per_class_masks(y, 20, 30, seed=1)
    assert _disjoint_cover((train, val, test))
    for c in range(7):
        assert (int(train[y == c].sum()), int(val[y == c].sum()), int(test[y == c].sum())) == (20, 30, 50)
    again, other = per_class_masks(y, 20, 30, seed=1), per_class_masks(y, 20, 30, seed=2)
    assert all(torch.equal(m, n) for m, n in zip(again, (train, val, test), strict=True))
    assert not torch.equal(other[0], train)
    with pytest.raises(ValueError, match=r"class 3 has 5 nodes: data.split.train_per_class=3 \+ "
                                         r"data.split.val_per_class=2"):
        per_class_masks(Y, 3, 2, seed=0)
    with pytest.raises(ValueError, match="^train_per_class=0: must be >= 1"):
        per_class_masks(Y, 0, 2, seed=0)


def test_random_split_keeps_its_numbers():
    """The split every NYC result so far was measured on (pinned: moved from datamodules/nyc_zip.py unchanged)."""
    masks = random_split_masks(torch.arange(20) % 4, 0.6, 0.2, seed=0)
    assert [m.nonzero().view(-1).tolist() for m in masks] == [
        [0, 1, 4, 6, 7, 10, 13, 15, 16, 17, 18, 19], [5, 11, 12, 14], [2, 3, 8, 9]]


# ------------------------------------------------------------------------------------------ label scarcity
def test_label_rates_give_nested_stratified_training_sets_inside_the_split():
    train, val, test = stratified_kfold_masks(Y, 5, 3, 0, seed=7)
    previous = torch.zeros_like(train)
    for rate in (0.05, 0.1, 0.2, 0.4, 0.6):
        counts = rate_counts(Y, train, rate)
        subset = labelled_subset(Y, train, counts, seed=[7, 1])
        assert not (subset & ~train).any() and not (previous & ~subset).any()  # inside the split, nested
        for c, n in enumerate(SIZES):
            assert int(subset[Y.eq(c)].sum()) == counts[c] == min(int(train[Y.eq(c)].sum()), max(1, round(rate * n)))
        previous = subset


def test_split_objects_keep_validation_and_test_and_subsample_training():
    full = RandomSplit(seed=3).masks(Y)
    scarce = RandomSplit(seed=3, label_rate=0.1).masks(Y)
    assert torch.equal(scarce[1], full[1]) and torch.equal(scarce[2], full[2])
    assert not (scarce[0] & ~full[0]).any() and int(scarce[0].sum()) < int(full[0].sum())
    for split in (RandomSplit, KFoldSplit):  # the split's own training share keeps every training node
        assert torch.equal(split(seed=3, label_rate=0.6).masks(Y)[0], split(seed=3).masks(Y)[0])
    two = KFoldSplit(seed=3, labels_per_class=2).masks(Y)
    assert torch.bincount(Y[two[0]]).tolist() == [2] * len(SIZES)
    with pytest.raises(ValueError, match="class 3 has 3 training nodes in this split, fewer than the 4"):
        KFoldSplit(seed=3, labels_per_class=4).masks(Y)


@pytest.mark.parametrize(("split", "options", "message"), [
    (KFoldSplit, dict(folds=2), r"^folds=2: must be >= 3 \(a test fold, a validation fold and training folds"),
    (KFoldSplit, dict(folds=4, fold=4), r"^fold=4: must be an integer in 0..3 \(folds=4\)"),
    (KFoldSplit, dict(fold=None), r"^fold=null: must be an integer in 0..4"),
    (KFoldSplit, dict(repeat=-1), r"^repeat=-1: must be >= 0"),
    (PerClassSplit, dict(val_per_class=-1), "^val_per_class=-1: must be >= 0"),
    (PerClassSplit, dict(train_per_class=0), "^train_per_class=0: must be >= 1"),
    (PerClassSplit, dict(label_rate=0.1), r"^label_rate=0.1: must be null for the per_class split \(it has no "
                                          r"training share\); give labels_per_class instead"),
    (PublicSplit, dict(label_rate=0.1), r"^label_rate=0.1: must be null for the public split"),
    (RandomSplit, dict(label_rate=0.1, labels_per_class=2), r"^label_rate=0.1: must be null when labels_per_class=2 is "
                                                             r"given \(give one of them\)"),
    (KFoldSplit, dict(folds=10, label_rate=0.9), r"^label_rate=0.9: must be in \(0, 0.8\], the training share of the "
                                                 r"kfold split"),
    (RandomSplit, dict(label_rate=0.0), r"^label_rate=0.0: must be in \(0, 0.6\]"),
    (RandomSplit, dict(labels_per_class=0), "^labels_per_class=0: must be >= 1"),
    (RandomSplit, dict(seed=-1), r"^seed=-1: must be an integer in \[0, 4294967295\]"),
])
def test_each_split_refuses_bad_values_of_its_own_keys(split, options, message):
    with pytest.raises(ValueError, match=message) as err:
        split(**options)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("split", "key"), [
    (RandomSplit, "fold"), (KFoldSplit, "train_per_class"), (KFoldSplit, "train_frac"), (PerClassSplit, "folds"),
    (PublicSplit, "val_frac"),
])
def test_a_split_takes_no_key_of_another_split(split, key):
    with pytest.raises(TypeError, match=key):
        split(**{key: 3})


def test_public_split_only_where_the_dataset_has_one(data_dir):
    with pytest.raises(ConfigError, match=r"^split=public: must be one of random, kfold, per_class \(this dataset has "
                                          r"no public split\): choose data/split=random, kfold or per_class$"):
        NYCZipDataModule(data_dir, download=False, split=PublicSplit())
    with pytest.raises(ConfigError, match=r"^split='kfold': must be a node split, chosen as data/split="):
        NYCZipDataModule(data_dir, download=False, split="kfold")
    assert isinstance(CoraDataModule(data_dir, download=False).split, PublicSplit)
    assert isinstance(NYCZipDataModule(data_dir, download=False).split, RandomSplit)
    with pytest.raises(ConfigError, match="data/split=public: this dataset has no public split"):
        PublicSplit().masks(Y)


# ------------------------------------------------------------------------------------------ wiring (Hydra config)
def _masks(make_cfg, *overrides: str) -> tuple[torch.Tensor, ...]:
    dm = load_data(make_cfg("data.download=false", *overrides))
    dm.setup("fit")
    return dm.data.y, dm.data.train_mask, dm.data.val_mask, dm.data.test_mask


def test_nyc_kfold_from_the_config_tests_every_zip_once(make_cfg):
    tested = []
    for fold in range(5):
        y, train, val, test = _masks(make_cfg, "data=nyc_zip", "seed=6", "data/split=kfold", "data.split.folds=5",
                                     f"data.split.fold={fold}", "data.split.repeat=1")
        expected = stratified_kfold_masks(y, 5, fold, 1, seed=6)  # data.split.seed follows the run's seed
        assert all(torch.equal(m, e) for m, e in zip((train, val, test), expected, strict=True))
        tested.append(test)
    assert (sum(t.int() for t in tested) == 1).all()


def test_nyc_default_split_is_still_the_seeded_60_20_20(make_cfg):
    y, *masks = _masks(make_cfg, "data=nyc_zip", "seed=6")
    assert all(torch.equal(m, e) for m, e in zip(masks, random_split_masks(y, 0.6, 0.2, 6), strict=True))


def test_nyc_label_rate_from_the_config_keeps_validation_and_test(make_cfg):
    y, *full = _masks(make_cfg, "data=nyc_zip", "seed=6", "data/split=kfold", "data.split.fold=2")
    _, *scarce = _masks(make_cfg, "data=nyc_zip", "seed=6", "data/split=kfold", "data.split.fold=2",
                        "data.split.label_rate=0.2")
    assert torch.equal(scarce[1], full[1]) and torch.equal(scarce[2], full[2])
    assert torch.bincount(y[scarce[0]]).tolist() == [2] * 5  # round(0.2 * 8) ZIPs of each borough


def test_cora_per_class_from_the_config(make_cfg):
    y, train, val, test = _masks(make_cfg, "data=cora", "seed=3", "data/split=per_class")
    assert _disjoint_cover((train, val, test))
    assert torch.bincount(y[train]).tolist() == [20] * 7 and torch.bincount(y[val]).tolist() == [30] * 7
    _, other, _, _ = _masks(make_cfg, "data=cora", "seed=4", "data/split=per_class")
    assert not torch.equal(train, other)  # seeded by the run's seed


def test_cora_public_split_stays_the_default(make_cfg):
    y, train, val, test = _masks(make_cfg, "data=cora", "seed=3")
    assert (int(train.sum()), int(val.sum()), int(test.sum())) == (14, 500, 30)  # tests/graph_fakes.py
    lacking = (torch.bincount(y[train], minlength=7) == 0).nonzero().view(-1).tolist()
    if lacking:  # the fake's 14 public training nodes may miss a class: one label per class cannot be kept
        with pytest.raises(ConfigError, match=f"class {lacking[0]} has 0 training nodes in this split"):
            _masks(make_cfg, "data=cora", "seed=3", "data.split.labels_per_class=1")
    else:
        _, few, _, _ = _masks(make_cfg, "data=cora", "seed=3", "data.split.labels_per_class=1")
        assert torch.bincount(y[few]).tolist() == [1] * 7


def test_cora_labels_per_class_keeps_validation_and_test(make_cfg):
    y, train, val, test = _masks(make_cfg, "data=cora", "seed=3", "data/split=per_class")
    previous = torch.zeros_like(train)
    for k in (1, 2, 5, 10, 20):  # the label-scarcity curve: nested training sets, one validation and test set
        _, few, val_k, test_k = _masks(make_cfg, "data=cora", "seed=3", "data/split=per_class",
                                       f"data.split.labels_per_class={k}")
        assert torch.equal(val_k, val) and torch.equal(test_k, test)
        assert torch.bincount(y[few]).tolist() == [k] * 7 and not (previous & ~few).any() and not (few & ~train).any()
        previous = few
    assert torch.equal(previous, train)


def test_a_key_of_another_split_is_refused_from_the_config(make_cfg):
    """The random split takes no fold: the key check names the key and what the split takes (one line each)."""
    with pytest.raises(ConfigError) as err:
        check_keys(make_cfg("data=nyc_zip", "seed=1", "+data.split.fold=3"))
    assert ("data.split.fold: datamodules.splits.RandomSplit takes no such setting (it takes: train_frac, val_frac, "
            "seed, label_rate, labels_per_class)") in [line.strip() for line in str(err.value).splitlines()]
    with pytest.raises(ConfigError, match=r"data.split.train_frac: datamodules.splits.KFoldSplit takes no such setting"):
        check_keys(make_cfg("data=nyc_zip", "data/split=kfold", "+data.split.train_frac=0.8"))


@pytest.mark.parametrize(("overrides", "message"), [
    (["data/split=kfold", "data.split.fold=5"], r"^data.split.fold=5: must be an integer in 0..4 \(folds=5\)$"),
    (["data/split=kfold", "data.split.folds=2"], r"^data.split.folds=2: must be >= 3"),
    (["data/split=per_class", "data.split.label_rate=0.1"], "^data.split.label_rate=0.1: must be null for the per_class"),
    (["data.split.train_frac=1.5"], r"^data.split.train_frac=1.5: must be in \(0, 1\)$"),
    (["data/split=public"], r"^data.split=public: must be one of random, kfold, per_class \(this dataset has no "
                            r"public split\): choose data/split=random, kfold or per_class$"),
    (["data.split=kfold"], r"^data.split='kfold': must be a node split, chosen as data/split=random, kfold or "
                           r"per_class$"),
])
def test_a_bad_split_value_is_named_by_its_config_key(make_cfg, overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_data(make_cfg("data=nyc_zip", "data.download=false", *overrides))
