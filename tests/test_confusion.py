"""The test-set confusion matrix (zoo/callbacks/confusion.py): CSV and PNG with class names and counts."""

import csv

import pytest

from tests.runs import TINY
from zoo.callbacks import confusion
from zoo.run.runner import train


def test_confusion_matrix_with_csv_logger(make_cfg, tmp_path, monkeypatch):
    drawn, publish = [], confusion.publish_figure

    def keep(trainer, fig, path, key):
        drawn.append(fig)
        return publish(trainer, fig, path, key)

    monkeypatch.setattr(confusion, "publish_figure", keep)
    metrics, objects = train(make_cfg("model=logreg", "data=mnist", *TINY))
    rows = list(csv.reader((tmp_path / "confusion_matrix.csv").open()))
    names = list(objects["datamodule"].class_names)
    assert rows[0][1:] == names == [row[0] for row in rows[1:]] and names[0] == "0 - zero"
    counts = [[int(v) for v in row[1:]] for row in rows[1:]]
    assert len(counts) == 10 and all(len(row) == 10 for row in counts)
    n = sum(map(sum, counts))
    assert sum(counts[i][i] for i in range(10)) / n == pytest.approx(metrics["test/acc"])
    assert (tmp_path / "confusion_matrix.png").stat().st_size > 0
    (ax,) = drawn[0].axes[:1]
    assert [t.get_text() for t in ax.texts] == [str(c) for row in counts for c in row]  # counts in the cells
    assert [t.get_text() for t in ax.get_xticklabels()] == names
