"""The private Lightning internals Zoo relies on, where Lightning has no public extension point; pyproject.toml pins
the Lightning range they were checked on. A Lightning release that moves one fails here, by name, before a run
would misbehave.

* DDP child processes: Lightning starts ranks 1..N-1 with ``_hydra_subprocess_cmd`` when Hydra is running; Zoo
  replaces it (zoo/run/distributed.py) so that children rerun the parent's resolved config in the same run dir.
* CSV history on resume: ``ExperimentWriter._check_log_dir_exists`` (which deletes ``metrics.csv``) and ``_fs``;
  Zoo's ``HistoryCSVLogger`` (zoo/loggers.py) keeps the rows up to the checkpoint's epoch instead.
* W&B's settings: ``WandbLogger`` passes ``anonymous=None`` to ``wandb.init`` (``_wandb_init``), which makes W&B warn
  that the setting is deprecated on every run; ``zoo.loggers.wandb_logger`` leaves the key out.
"""

import inspect

import pytest
from lightning.fabric.strategies.launchers import subprocess_script as fabric_launcher
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.strategies.launchers import subprocess_script as pl_launcher


@pytest.mark.parametrize("module", [fabric_launcher, pl_launcher], ids=["fabric", "pytorch"])
def test_ddp_children_are_started_through_the_module_level_hydra_command(module):
    assert "local_rank" in inspect.signature(module._hydra_subprocess_cmd).parameters
    # Looked up as a module global when the children start, so replacing the module attribute takes effect.
    assert "_hydra_subprocess_cmd(" in inspect.getsource(module._SubprocessScriptLauncher._call_children_scripts)


def test_the_csv_writer_checks_its_folder_through_an_overridable_method(tmp_path):
    fabric_writer = ExperimentWriter.__mro__[1]  # lightning.fabric's _ExperimentWriter: its __init__ calls the check
    assert fabric_writer.__name__ == "_ExperimentWriter"
    assert "super().__init__(" in inspect.getsource(ExperimentWriter.__init__)
    assert "self._check_log_dir_exists()" in inspect.getsource(fabric_writer.__init__)
    writer = ExperimentWriter(str(tmp_path))
    assert hasattr(writer, "_fs") and writer._fs.isfile and writer.metrics_file_path.endswith("metrics.csv")
    assert hasattr(writer, "metrics_keys")
    logger = CSVLogger(str(tmp_path))
    assert hasattr(logger, "_fs") and hasattr(logger, "_experiment") and logger.root_dir and logger.log_dir


def test_the_wandb_logger_keeps_its_init_arguments_in_a_dict():
    from lightning.pytorch.loggers import WandbLogger

    logger = WandbLogger(mode="disabled", project="p")
    assert logger._wandb_init.get("project") == "p" and "anonymous" in logger._wandb_init
