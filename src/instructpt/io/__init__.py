"""Shared input/output: readers (jsonl, jsonl.gz, parquet, HF datasets), sharded atomic writers with completion
markers and config fingerprints (resume), rejects files, and stats. Every stage uses this one mechanism."""
