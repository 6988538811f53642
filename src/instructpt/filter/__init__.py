"""Pair-level quality filters as a stage (``instructpt filter``)."""
