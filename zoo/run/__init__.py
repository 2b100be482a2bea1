"""The run layer: train(cfg), config checks, checkpoints, DDP, sweeps, loggers and the leaderboard."""
