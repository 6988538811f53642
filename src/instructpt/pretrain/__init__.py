"""``instructpt pretrain`` and ``instructpt export``: train a model on a mixture, and turn a checkpoint into an HF model."""
