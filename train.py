"""Command-line entry point: ``python train.py model=<name> data=<name> [key=value ...]``."""

import hydra
from omegaconf import DictConfig

from zoo.train import train


@hydra.main(version_base="1.3", config_path="configs", config_name="train.yaml")
def main(cfg: DictConfig) -> float | None:
    metrics, _ = train(cfg)
    # Sweepers (Optuna) minimise or maximise the value returned here.
    return metrics.get(cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()
