"""``python -m zoo.run.compare``: a leaderboard from run directories alone."""

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from zoo.run.compare import main


def fake_run(sweep: Path, name: str, model: str, data: str, metrics: dict | None = None,
             error: bool = False) -> None:
    """A run directory as train.py leaves it: .hydra/{hydra,config}.yaml, then metrics.json or error.txt."""
    run = sweep / name
    (run / ".hydra").mkdir(parents=True)
    hydra = {"hydra": {"runtime": {"choices": {"model": model, "data": data, "trainer": "default"}}}}
    (run / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(hydra))
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"model_name": "${hydra:runtime.choices.model}"}))
    if metrics is not None:
        (run / "metrics.json").write_text(json.dumps(metrics))
    if error:
        (run / "error.txt").write_text("overrides: model=cnn\nerror: RuntimeError: boom\n")


@pytest.fixture
def sweep(tmp_path) -> Path:
    sweep = tmp_path / "multiruns" / "2026-01-01_00-00-00"
    i = 0
    for seed, acc in ((1, 0.90), (2, 0.92), (3, 0.94)):
        fake_run(sweep, f"{i}_mlp-mnist", "mlp", "mnist",
                 {"test/acc": acc, "params": 1000.0, "fit_seconds": 10.0 * seed, "epochs": 5.0, "seed": seed})
        i += 1
    for seed, acc in ((1, 0.80), (2, 0.84)):
        fake_run(sweep, f"{i}_logreg-mnist", "logreg", "mnist",
                 {"test/acc": acc, "params": 7850.0, "fit_seconds": 2.0, "epochs": 3.0, "seed": seed})
        i += 1
    fake_run(sweep, f"{i}_logreg-fashion_mnist", "logreg", "fashion_mnist",
             {"test/acc": 0.70, "params": 7850.0, "fit_seconds": 4.0, "epochs": 2.0, "seed": 1})
    fake_run(sweep, f"{i + 1}_cnn-mnist", "cnn", "mnist", error=True)  # failed job
    fake_run(sweep, f"{i + 2}_cnn-mnist", "cnn", "mnist")  # still running (or killed)
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    return sweep


def test_leaderboard_from_run_dirs(sweep, capsys):
    main([str(sweep.parent)])  # a folder of sweeps works too
    table = pd.read_csv(sweep.parent / "leaderboard.csv")
    assert list(zip(table.data, table.model, strict=True)) == [
        ("fashion_mnist", "logreg"), ("mnist", "mlp"), ("mnist", "logreg"), ("mnist", "cnn")]
    mlp = table.iloc[1]
    assert (mlp.runs, mlp.failed, mlp.params, mlp.epochs) == (3, 0, 1000, 5)
    assert mlp.test_acc_mean == pytest.approx(0.92) and mlp.test_acc_std == pytest.approx(0.02)  # sample std
    assert mlp.fit_seconds == pytest.approx(20.0)
    logreg = table.iloc[2]
    assert logreg.test_acc_mean == pytest.approx(0.82) and logreg.test_acc_std == pytest.approx(0.0283, abs=1e-4)
    assert table.iloc[0].test_acc_std == 0.0  # one seed
    cnn = table.iloc[3]
    assert (cnn.runs, cnn.failed) == (0, 1) and pd.isna(cnn.test_acc_mean)

    markdown = (sweep.parent / "leaderboard.md").read_text()
    assert "| mlp | mnist | 0.9200 ± 0.0200 | 3 | 0 | 1,000 | 20.0 | 5 |" in markdown
    assert "| cnn | mnist | - | 0 | 1 | - | - | - |" in markdown
    assert markdown in capsys.readouterr().out
    assert (sweep.parent / "leaderboard.png").read_bytes()[:4] == b"\x89PNG"


def test_no_runs_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="No run directories"):
        main([str(tmp_path)])
