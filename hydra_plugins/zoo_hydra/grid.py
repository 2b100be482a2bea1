"""``hydra/sweeper=grid``: Hydra's basic sweeper; ``grid: {<override>: {key: values}}`` also sweeps those keys
in jobs with ``<override>``, e.g. ``{experiment=logreg_nyc_zip: {model.optimizer.weight_decay: "0.0,1e-3"}}``.
``zoo.report`` picks a grid point per model and split on validation accuracy alone."""

import itertools
import logging
from collections.abc import Mapping
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException

from zoo.errors import ConfigError, reported_as_message

log = logging.getLogger(__name__)


class GridError(ConfigError, HydraException):
    """A grid the sweeper cannot run: one line and exit code 2 from the command (a Hydra error to Hydra's API)."""


class GridSweeper(BasicSweeper):
    """:class:`BasicSweeper` whose jobs also sweep ``grid[<override>]`` when they carry ``<override>``."""

    def __init__(self, max_batch_size: int | None = None, params: dict[str, str] | None = None,
                 grid: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        super().__init__(max_batch_size, params)
        self.grid = {str(k): {str(key): str(v) for key, v in (extra or {}).items()} for k, extra in (grid or {}).items()}
        for trigger in self.grid:
            if "=" not in trigger:
                raise GridError(f"hydra.sweeper.grid key {trigger!r}: must be an override, key=value "
                                f"(e.g. experiment=logreg_nyc_zip).")

    def _extra(self, job: list[str]) -> list[list[str]]:
        """The job's grid points: a list of extra overrides per point (``[[]]`` when no grid applies)."""
        axes: list[list[str]] = []
        loader = self.hydra_context.config_loader if self.hydra_context else None
        parser = OverridesParser.create(config_loader=loader)
        for trigger in (t for t in self.grid if t in job):
            for override in parser.parse_overrides([f"{k}={v}" for k, v in self.grid[trigger].items()]):
                key = override.get_key_element()
                if any(o.split("=", 1)[0] == key for o in job):
                    raise GridError(f"hydra.sweeper.grid.{trigger} sweeps {key}, which the sweep already "
                                    f"sets: remove it from one of them.")
                values = (list(override.sweep_string_iterator()) if override.is_sweep_override()
                          else [override.get_value_element_as_str()])
                axes.append([f"{key}={v}" for v in values])
        return [list(point) for point in itertools.product(*axes)]

    def sweep(self, arguments: list[str]) -> Any:
        with reported_as_message():  # a grid it cannot run: one line, no traceback
            return super().sweep(arguments)

    def split_arguments(self, overrides: list[Override], max_batch_size: int | None) -> list[list[list[str]]]:
        jobs = [job for batch in BasicSweeper.split_arguments(overrides, None) for job in batch]
        unused = [t for t in self.grid if not any(t in job for job in jobs)]
        if unused:  # e.g. a comparison narrowed to some of its models; a typo shows here too
            log.warning("hydra.sweeper.grid: no job of this sweep carries %s; its grid is not used.", ", ".join(unused))
        expanded = [job + point for job in jobs for point in self._extra(job)]
        return list(self.split_overrides_to_chunks(expanded, max_batch_size)) if max_batch_size else [expanded]
