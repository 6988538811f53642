"""Shared input/output: which files the inputs name (inputs.py), readers of every input format (readers.py), run
directories with fingerprints and resume checks (rundir.py), sharded atomic writers with completion markers and
typed read-back (shards.py), pack's token files (tokens.py), stats and ids. Every stage uses this one mechanism."""
