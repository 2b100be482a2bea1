"""A typo on the command line is one line with exit code 2 and a "did you mean", before Hydra writes anything."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from zoo.cli import overrides
from zoo.cli.overrides import check_command, problem

ROOT = Path(__file__).resolve().parents[1]

TYPOS = [
    (["model=mlp", "model.net.hiden_sizes=[3]"], "model.net.hiden_sizes: zoo.nets.mlp.MLP takes no argument "
                                                 "hiden_sizes (did you mean model.net.hidden_sizes?"),
    (["trainr.max_epochs=1"], "trainr: the config has no such key (did you mean trainer?"),
    (["model=mlp", "trainer.max_epoch=1"], "trainer.max_epoch: lightning.Trainer takes no argument max_epoch (did you "
                                           "mean trainer.max_epochs?)"),
    (["data=mnist", "data/split=kfold"], "data/split: the chosen data config has no data/split to override; it is an "
                                         "option of data=cora|nyc_zip only"),
    (["model=mlpp"], "model=mlpp: there is no such option in configs/model (did you mean model=mlp? options: appnp,"),
    (["data=mnistt"], "data=mnistt: there is no such option in configs/data (did you mean data=mnist?"),
    (["hydra/launcher=slurn"], "hydra/launcher=slurn: there is no such option in configs/hydra/launcher (did you mean "
                               "hydra/launcher=slurm?"),
    (["model=mlp,cnnn"], "model=cnnn: there is no such option"),  # every value of a sweep, not only the first
    (["experiment=cnn_mnist_best", "data.augment.0.degree=5"], "data.augment.0.degree: datamodules.augment."
     "PerSampleAffine takes no argument degree (did you mean data.augment.0.degrees?"),
    (["compare=nyc", "hydra.sweeper.params.data.split.fold=0,1"], "(to sweep data.split.fold, write "
                                                                  "data.split.fold=0,1:"),
    (["data=nyc_zip", "data/split=kfoldd"], "data/split=kfoldd: there is no such option in configs/data/split (did "
                                            "you mean data/split=kfold?"),
    (["data=nyc_zip", "data.split.fold=3"], "data.split.fold: datamodules.splits.RandomSplit takes no argument fold "
                                            "(its arguments: train_frac, val_frac, seed, label_rate, labels_per_class)"),
    (["seed=[1"], "Cannot read the overrides"),
]


@pytest.mark.parametrize(("args", "message"), TYPOS, ids=[" ".join(a) for a, _ in TYPOS])
def test_a_typo_is_one_line_with_a_hint(args, message):
    found = problem("train.yaml", args)
    assert found is not None and message in found and "\n" not in found, found


@pytest.mark.parametrize("args", [
    ["model=mlp", "data=mnist", "trainer.max_epochs=1"], ["model=mlp,cnn", "seed=range(0,3)"],
    ["+trainer.detect_anomaly=true"], ["experiment=gcn_cora"], ["hparams_search=logreg", "hydra.sweeper.n_trials=2"],
    ["data=nyc_zip", "data/split=kfold", "data.split.fold=3"], ["data=cora", "data/split=per_class,kfold"],
    ["data=nyc_zip", "data/split=kfold", "data.split.fold=range(0,5)"],
    ["compare=nyc", "data.split.repeat=0", "data.split.fold=0,1", "data.split.label_rate=0.2"],
    [],
], ids=lambda a: " ".join(a) or "no overrides")
def test_good_overrides_pass(args):
    assert problem("train.yaml", args) is None


SUGGESTION = re.compile(r"(?:did you mean|write) (\S+?)[?:]?(?=[ )]|$)")
SUGGESTED = [(a, m) for a, m in TYPOS if "did you mean" in m or "write" in m]


@pytest.mark.parametrize(("args", "message"), SUGGESTED, ids=[" ".join(a) for a, _ in SUGGESTED])
def test_every_suggestion_when_followed_composes(args, message):
    fix = SUGGESTION.search(problem("train.yaml", args)).group(1)
    fixed = [a for a in args if not a.startswith(("trainr", "hydra.sweeper.params", fix.split("=")[0]))]
    if "=" not in fix:  # a key: the typed override with its key corrected
        typo, value = next(a.split("=", 1) for a in args if a.split("=", 1)[0].startswith(message.split(":")[0]))
        fix = f"{typo.replace(message.split(':')[0], fix)}={value}"
        fixed = [a for a in fixed if not a.startswith(typo + "=")]
    assert problem("train.yaml", [*fixed, fix]) is None, (fixed, fix)


@pytest.mark.parametrize("args", [
    ["data.augment.2.ratio=[0,1]"], ["experiment=cnn_mnist_best", "data.augment.2.ratio=[0,1]"],
    ["experiment=cnn_mnist_best", "data.augment.x.ratio=1"], ["model.net.hidden_sizes.0.a=1"], ["+=1"],
], ids=lambda a: " ".join(a))
def test_the_pre_check_never_raises_and_names_the_key(args):
    found = problem("train.yaml", args)
    assert found is None or ("\n" not in found and "Traceback" not in found), found


def test_a_missing_list_item_is_named():
    found = problem("train.yaml", ["experiment=cnn_mnist_best", "data.augment.2.ratio=[0,1]"])
    assert found == "data.augment.2: data.augment is a list with items 0..0, so there is no item 2"


def test_an_internal_failure_of_the_check_leaves_the_command_to_hydra(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(overrides, "compose", broken)
    assert problem("train.yaml", ["model=mlp"]) is None


@pytest.mark.parametrize("args", [["model=mlp,cnn,logreg", "seed=range(0,5)", "data=mnist,fashion_mnist"],
                                  ["compare=nyc"], ["hparams_search=logreg"]], ids=lambda a: " ".join(a))
def test_a_sweep_is_composed_once(monkeypatch, args):
    calls = []
    compose_once = overrides.compose
    monkeypatch.setattr(overrides, "compose", lambda *a: calls.append(a) or compose_once(*a))
    assert problem("train.yaml", args) is None
    assert len(calls) == 1


def test_eval_config_is_checked_too():
    assert "did you mean model=mlp?" in problem("eval.yaml", ["model=mlpp"])


def test_hydras_own_flags_are_left_to_hydra(capsys):
    check_command("train.yaml", ["--cfg", "job", "model=mlpp"])  # Hydra answers --help, --cfg, --config-path...
    with pytest.raises(SystemExit) as stop:
        check_command("train.yaml", ["-m", "model=mlpp"])
    assert stop.value.code == 2


def test_the_command_exits_2_with_one_line_and_writes_nothing(tmp_path):
    proc = subprocess.run([sys.executable, "train.py", "trainr.max_epochs=1", f"hydra.run.dir={tmp_path / 'run'}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stdout + proc.stderr
    assert lines[0].startswith("ConfigError: trainr: the config has no such key (did you mean trainer?")
    assert not (tmp_path / "run").exists()
