"""A typo on the command line is one line with exit code 2 and a "did you mean", before Hydra writes anything."""

import subprocess
import sys
from pathlib import Path

import pytest

from zoo.cli.overrides import check_command, problem

ROOT = Path(__file__).resolve().parents[1]

TYPOS = [
    (["model=mlp", "model.net.hiden_sizes=[3]"], "model.net.hiden_sizes: the config has no such key (did you mean "
                                                 "model.net.hidden_sizes?"),
    (["trainr.max_epochs=1"], "trainr: the config has no such key (did you mean trainer?"),
    (["model=mlp", "trainer.max_epoch=1"], "trainer.max_epoch: the config has no such key (did you mean "
                                           "trainer.max_epochs?"),
    (["model=mlpp"], "model=mlpp: there is no such option in configs/model (did you mean model=mlp? options: appnp,"),
    (["data=mnistt"], "data=mnistt: there is no such option in configs/data (did you mean data=mnist?"),
    (["hydra/launcher=slurn"], "hydra/launcher=slurn: there is no such option in configs/hydra/launcher (did you mean "
                               "hydra/launcher=slurm?"),
    (["model=mlp,cnnn"], "model=cnnn: there is no such option"),  # every value of a sweep, not only the first
    (["seed=[1"], "Cannot read the overrides"),
]


@pytest.mark.parametrize(("args", "message"), TYPOS, ids=[" ".join(a) for a, _ in TYPOS])
def test_a_typo_is_one_line_with_a_hint(args, message):
    found = problem("train.yaml", args)
    assert found is not None and message in found and "\n" not in found, found


@pytest.mark.parametrize("args", [
    ["model=mlp", "data=mnist", "trainer.max_epochs=1"], ["model=mlp,cnn", "seed=range(0,3)"],
    ["+trainer.detect_anomaly=true"], ["experiment=gcn_cora"], ["hparams_search=logreg", "hydra.sweeper.n_trials=2"],
    [],
], ids=lambda a: " ".join(a) or "no overrides")
def test_good_overrides_pass(args):
    assert problem("train.yaml", args) is None


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
