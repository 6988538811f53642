"""The instruction synthesizer: M-shot chains (chains.py), text splitting (split.py), the streaming stage (run.py).

The wire format it speaks lives in :mod:`instructpt.wire`."""
