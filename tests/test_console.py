"""What a run prints (zoo/run/console.py): the resolved config tree, one test table, no library noise."""

import logging
import warnings

import lightning as L
from lightning.pytorch.callbacks import ModelSummary
from omegaconf import OmegaConf

from tests.runs import TINY
from zoo.run import console
from zoo.run.runner import train


def test_config_tree_and_one_test_table(make_cfg, tmp_path, capsys):
    train(make_cfg("model=logreg", "data=mnist", *TINY, "extras.print_config=true"))
    out = capsys.readouterr().out
    tree = (tmp_path / "config_tree.log").read_text()
    assert tree.startswith("CONFIG") and tree in out
    assert "facts" in tree and "num_classes: 10" in tree and "${" not in tree  # resolved, facts filled
    assert tree.index("── data") < tree.index("── model") < tree.index("── trainer")
    assert "Test metric" not in out and "logreg on mnist" in out  # Lightning's table off, Zoo's summary on


def test_a_sweep_job_writes_its_tree_without_printing_it(make_cfg, tmp_path, capsys, caplog):
    """A sweep of hundreds of jobs must not print a config tree per job (compare=nyc once printed 54,542 lines)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import open_dict, read_write

    cfg = make_cfg("model=logreg", "data=mnist", "~model", "extras.print_config=true")  # (facts: filled later)
    with read_write(cfg.hydra), open_dict(cfg.hydra):
        cfg.hydra.mode = RunMode.MULTIRUN
    with open_dict(cfg):
        cfg.facts = {}
    HydraConfig.instance().set_config(cfg)
    with caplog.at_level(logging.INFO):
        console.print_config_tree(cfg, save_to=tmp_path / "config_tree.log")
    assert "CONFIG" not in capsys.readouterr().out and "run folder" in caplog.text
    assert (tmp_path / "config_tree.log").read_text().startswith("CONFIG")


def test_by_default_one_line_says_what_runs_and_the_tree_goes_to_the_run_folder(make_cfg, tmp_path, capsys,
                                                                                 caplog):
    from omegaconf import open_dict

    cfg = make_cfg("model=logreg", "data=mnist", "~model")  # (facts are filled when the data is loaded)
    with open_dict(cfg):
        cfg.facts = {}
    assert cfg.extras.print_config is False
    with caplog.at_level(logging.INFO):
        console.print_config_tree(cfg, save_to=tmp_path / "config_tree.log")
    assert "CONFIG" not in capsys.readouterr().out and (tmp_path / "config_tree.log").read_text().startswith("CONFIG")
    assert f"? on mnist (seed {cfg.seed}): run folder {tmp_path} (config in config_tree.log)" in caplog.text


def test_lightning_tips_and_deprecations_are_silenced(caplog):
    def trainer_messages() -> str:
        caplog.clear()
        with caplog.at_level(logging.INFO):
            L.Trainer(logger=False, callbacks=[ModelSummary()], enable_progress_bar=False, accelerator="cpu")
        return caplog.text

    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).removeFilter(console._NOISE_FILTER)  # as in a fresh process
    noisy = trainer_messages()
    assert "💡 Tip" in noisy and "already configured with model summary" in noisy
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        console.silence_noise(OmegaConf.create({"extras": {"quiet": True}}))
        warnings.warn("old API", DeprecationWarning, stacklevel=1)
        warnings.warn("will change", FutureWarning, stacklevel=1)
        warnings.warn("The number of training batches (5) is smaller than the logging interval", UserWarning,
                      stacklevel=1)
        warnings.warn("look at this", UserWarning, stacklevel=1)
        quiet = trainer_messages()
    assert [str(w.message) for w in caught] == ["look at this"]
    assert "Tip" not in quiet and "already configured" not in quiet and "GPU available" in quiet


def _bar_with_a_log_line(handler_class: type) -> str:
    """What a stream shows when a line is logged while a tqdm bar is drawn on it."""
    import io

    from tqdm import tqdm

    stream = io.StringIO()
    logger = logging.getLogger("zoo.tests.bar")
    handler = handler_class(stream)
    logger.addHandler(handler)
    logger.propagate, logger.level = False, logging.INFO
    try:
        bar = tqdm(total=10, file=stream, ncols=60, mininterval=0)
        bar.update(3)
        logger.info("a log line")
        bar.update(2)
        bar.close()
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_a_log_line_goes_above_the_progress_bar_not_onto_it():
    from zoo.callbacks.bar_logging import BarAwareStreamHandler

    glued = _bar_with_a_log_line(logging.StreamHandler)  # Python's handler: the line is appended to the bar
    assert "3/10" in glued and "\ra log line" not in glued
    shown = _bar_with_a_log_line(BarAwareStreamHandler)
    before, line, after = shown.partition("a log line\n")
    assert line and before.endswith("\r")  # the bar cleared: the line starts a screen line of its own
    assert "3/10" in after and "5/10" in after  # and the bar is drawn again below it
