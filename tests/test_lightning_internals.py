"""The private library internals Zoo relies on, where a library has no public extension point; pyproject.toml pins
the range each was checked on (Lightning 2.3-2.6, Hydra 1.3, submitit 1.5, OmegaConf 2.3: test_the_versions_are_the_
checked_ones). A release that moves one fails here, by name, before a run would misbehave.

* DDP child processes: Lightning starts ranks 1..N-1 with ``_hydra_subprocess_cmd`` when Hydra is running; Zoo
  replaces it (zoo/run/distributed.py) so that children rerun the parent's resolved config in the same run dir.
* CSV history on resume: ``ExperimentWriter._check_log_dir_exists`` (which deletes ``metrics.csv``) and ``_fs``;
  Zoo's ``HistoryCSVLogger`` (zoo/loggers.py) keeps the rows up to the checkpoint's epoch instead.
* W&B's settings: ``WandbLogger`` passes ``anonymous=None`` to ``wandb.init`` (``_wandb_init``), which makes W&B warn
  that the setting is deprecated on every run; ``zoo.loggers.wandb_logger`` leaves the key out.
* Hydra's basic sweeper (``hydra._internal.core_plugins.basic_sweeper``): ``hydra/sweeper=grid`` subclasses it and
  expands its jobs through ``split_arguments`` (hydra_plugins/zoo_hydra/grid.py).
* Hydra's ``InstantiationException`` names the failing node as ``full_key: <key>``, and OmegaConf's
  ``_get_full_key``: a constructor's refusal is reported under its config key (zoo/run/build.py).
* submitit's ``_make_sbatch_string`` and ``AutoExecutor._executor``: ``hydra/launcher=slurm`` checks each array's
  script with ``sbatch --test-only`` before submitting (hydra_plugins/zoo_hydra/slurm.py).
* PyG's ``BasicGNN`` sets ``_is_conv_to_out`` while it builds the last layer: Zoo's GAT gives that layer its own
  number of heads (zoo/nets/gat.py).
* PyG's ``Dataset.__init__`` processes through ``_process``, which honours ``force_reload``: Zoo's checked caches
  delete unreadable side files there first (datamodules/files.py).
"""

import importlib.metadata
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


@pytest.mark.parametrize(("package", "low", "high"), [
    ("lightning", (2, 3), (2, 7)), ("hydra-core", (1, 3), (1, 4)), ("omegaconf", (2, 3), (2, 4)),
    ("torch-geometric", (2, 5), (2, 9)),
])
def test_the_versions_are_the_checked_ones(package, low, high):
    version = tuple(int(p) for p in importlib.metadata.version(package).split(".")[:2])
    assert low <= version < high, f"{package} {version}: the internals below were checked on {low} to {high}"


def test_the_grid_sweeper_extends_hydras_basic_sweeper():
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    assert list(inspect.signature(BasicSweeper.split_arguments).parameters) == ["overrides", "max_batch_size"]
    assert list(inspect.signature(BasicSweeper.split_overrides_to_chunks).parameters) == ["lst", "n"]
    assert "self.split_arguments(" in inspect.getsource(BasicSweeper.sweep)
    assert "hydra_context" in inspect.signature(BasicSweeper.setup).parameters


def test_a_refused_constructor_is_reported_under_its_config_key():
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"model": {"net": {"_target_": "zoo.checks.integer", "name": "n", "value": 0}}})
    with pytest.raises(InstantiationException, match=r"full_key: model\.net"):
        instantiate(cfg.model.net)
    assert cfg.model.net._get_full_key(None) == "model.net"


def test_the_sbatch_script_is_made_by_submitit(tmp_path):
    submitit = pytest.importorskip("submitit")
    from submitit.slurm.slurm import _make_sbatch_string

    assert importlib.metadata.version("submitit").startswith("1.5.")
    executor = submitit.AutoExecutor(folder=tmp_path, cluster="slurm")
    executor.update_parameters(timeout_min=5, slurm_partition="p")
    inner = executor._executor
    script = _make_sbatch_string(command="true", folder=inner.folder, map_count=2, **inner.parameters)
    assert "#SBATCH --partition=p" in script and "#SBATCH --array=0-1" in script


def test_pyg_marks_the_last_layer_it_builds():
    from zoo.nets.gat import GAT

    net = GAT(in_features=4, num_classes=3, hidden_channels=2, heads=8, output_heads=1)
    first, last = net.gnn.convs[0], net.gnn.convs[-1]
    assert (first.heads, last.heads) == (8, 1) and not last.concat


def test_pyg_datasets_process_through_an_overridable_method():
    from torch_geometric.data import Dataset

    assert "self._process()" in inspect.getsource(Dataset.__init__)
    assert "self.force_reload" in inspect.getsource(Dataset._process)
