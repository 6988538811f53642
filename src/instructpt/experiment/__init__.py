"""The experiment: instruction pre-training against vanilla pre-training at the same token budget (micro data here)."""
