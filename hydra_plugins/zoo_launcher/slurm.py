"""Zoo's SLURM launcher, registered where Hydra looks for launchers (``hydra_plugins``): see zoo/run/slurm.py."""

from zoo.run import slurm


class SlurmLauncher(slurm.SlurmLauncher):
    """``hydra/launcher=slurm``: a sweep as one SLURM job array, checked before submission and watched to the end."""
