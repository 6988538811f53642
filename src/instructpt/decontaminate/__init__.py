"""Decontamination: evaluation-set text found in pre-training data (``instructpt decontaminate``)."""
