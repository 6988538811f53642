"""The instruction synthesizer: wire format (format.py), M-shot chains (chains.py), the streaming stage (run.py)."""
