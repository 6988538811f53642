"""The training loop and what it needs (model presets, checkpoints, data parallelism), shared by every trainer."""
