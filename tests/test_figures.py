"""Every figure Zoo writes, drawn with long labels: no tick label, title or legend text is cut off in the PNG."""

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import matplotlib
import pandas as pd
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox, TransformedBbox
from torchmetrics.classification import MulticlassConfusionMatrix

from zoo.callbacks.confusion import ConfusionMatrix
from zoo.callbacks.curves import TrainingCurves
from zoo.report.curves import curves_plot
from zoo.report.plots import leaderboard_plot, pairs_plot
from zoo.report.stats import NOT_SEPARABLE

LONG = "a rather long label: gcn hidden=256 dropout=0.5 lr=0.01 weight_decay=5e-4"
MODELS = [f"{LONG} #{i}" for i in range(3)]


@pytest.fixture
def saved(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Figure, dict[str, Any]]]:
    """Each figure saved while the test runs, with the arguments it was saved with."""
    calls: list[tuple[Figure, dict[str, Any]]] = []
    savefig = Figure.savefig

    def recording(fig: Figure, *args: Any, **kwargs: Any) -> None:
        calls.append((fig, kwargs))
        savefig(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", recording)
    return calls


def _in_view(text: Text, fig: Figure) -> bool:
    """False for the labels of ticks outside their axis' view (matplotlib does not draw them)."""
    for ax in fig.axes:
        for axis, limits, at in ((ax.xaxis, ax.get_xlim(), 0), (ax.yaxis, ax.get_ylim(), 1)):
            ticks = axis.get_major_ticks() + axis.get_minor_ticks()
            if any(text is t.label1 or text is t.label2 for t in ticks):
                low, high = sorted(limits)
                span = (high - low) * 1e-6
                return low - span <= text.get_position()[at] <= high + span
    return True


def assert_nothing_cut_off(fig: Figure, savefig_kwargs: dict[str, Any], long: bool = True) -> None:
    """Every drawn text of ``fig`` lies inside the area its PNG holds (the whole figure, or the tight box);
    ``long``: the long labels are among them."""
    canvas = FigureCanvasAgg(fig)  # as it was saved (closing a figure takes its canvas)
    canvas.draw()
    renderer = canvas.get_renderer()
    area: Bbox = fig.bbox
    if savefig_kwargs.get("bbox_inches") == "tight":
        pad = savefig_kwargs.get("pad_inches", matplotlib.rcParams["savefig.pad_inches"])
        area = TransformedBbox(fig.get_tightbbox(renderer).padded(pad), fig.dpi_scale_trans)
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip() and _in_view(t, fig)]
    assert not long or any(LONG in t.get_text() for t in texts)
    cut = [t.get_text() for t in texts if not _inside(t.get_window_extent(renderer), area)]
    assert not cut, f"cut off at the PNG's edge: {cut}"


def _inside(box: Bbox, area: Bbox, slack: float = 1.0) -> bool:
    return (box.x0 >= area.x0 - slack and box.y0 >= area.y0 - slack and box.x1 <= area.x1 + slack
            and box.y1 <= area.y1 + slack)


def _only(saved: list[tuple[Figure, dict[str, Any]]]) -> tuple[Figure, dict[str, Any]]:
    assert len(saved) == 1
    return saved[0]


@pytest.mark.parametrize("epochs", [1, 3])
def test_training_curves_of_few_epochs_read_as_whole_epochs(epochs, tmp_path):
    curves = TrainingCurves(tmp_path)
    for key in curves.history:
        curves.history[key] = {e: 1.0 / (e + 2) for e in range(epochs)}
    fig = curves.plot()
    fig.canvas.draw()
    for ax in fig.axes:
        low, high = ax.get_xlim()
        shown = [t for t in ax.get_xticks() if low <= t <= high]
        assert set(range(epochs)) <= set(shown) and all(float(t).is_integer() for t in shown), shown
        assert low <= -0.4 and high >= epochs - 0.6  # the points are not on the frame
        assert all(line.get_marker() == "o" for line in ax.get_lines())  # one epoch: a visible point


def test_training_curves_are_whole(saved, tmp_path):
    curves = TrainingCurves(tmp_path)
    for key in curves.history:
        curves.history[key] = {0: 0.5}
    curves.on_train_end(SimpleNamespace(callback_metrics={}, current_epoch=1, is_global_zero=True,
                                        fast_dev_run=False, loggers=[], global_step=1), None)
    assert_nothing_cut_off(*_only(saved), long=False)  # its labels are Zoo's own: loss, acc, train, val


def test_confusion_matrix_is_whole(saved, tmp_path):
    callback = ConfusionMatrix(tmp_path)
    callback.metric = MulticlassConfusionMatrix(len(MODELS))
    callback.metric.update(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 1, 1, 2]))
    trainer = SimpleNamespace(is_global_zero=True, datamodule=SimpleNamespace(class_names=MODELS), loggers=[],
                              global_step=0)
    callback.on_test_epoch_end(trainer, None)
    assert_nothing_cut_off(*_only(saved))


def test_leaderboard_plot_is_whole(saved, tmp_path):
    table = pd.DataFrame({"data": "cora", "group": MODELS, "label": MODELS, "test_acc_mean": [0.81, 0.80, 0.78],
                          "test_acc_std": [0.01, 0.02, None]})
    runs = pd.DataFrame({"data": "cora", "group": [m for m in MODELS for _ in range(2)], "status": "done",
                         "test_acc": [0.80, 0.82, 0.79, 0.81, 0.78, 0.78]})
    leaderboard_plot(table, runs, tmp_path / "leaderboard.png")
    assert_nothing_cut_off(*_only(saved))


def test_pairs_plot_is_whole(saved, tmp_path):
    best, per_node, per_seed = MODELS
    summary = pd.DataFrame({"model": MODELS, "diff_mean": [0.0, -0.01, -0.03], "ci_low": [float("nan"), -0.02, -0.05],
                            "ci_high": [float("nan"), 0.01, -0.01], "verdict": ["", NOT_SEPARABLE, f"{best} better"]})
    summary.attrs["best"] = best
    pairs = pd.DataFrame({"a": [best], "b": [per_node], "difference": [0.01], "ci_low": [-0.01], "ci_high": [0.03],
                          "repeat_ci_low": [float("nan")], "repeat_ci_high": [float("nan")],
                          "verdict": [NOT_SEPARABLE]})
    pairs_plot(f"cora {LONG}", summary, pairs, tmp_path / "paired.png", 0.95)
    assert_nothing_cut_off(*_only(saved))


def test_label_rate_curves_are_whole(saved, tmp_path):
    rows = [{"data": "cora", "rate_key": "data.split.labels_per_class", "rate": rate, "model": model,
             "acc": 0.7 + rate / 100, "ci_low": 0.65, "ci_high": 0.9, "level": 0.95}
            for model in MODELS for rate in (5, 10, 20)]
    assert curves_plot(pd.DataFrame(rows), tmp_path / "label_rates.png") == Path(tmp_path / "label_rates.png")
    assert_nothing_cut_off(*_only(saved))
