"""instructpt: Instruction Pre-Training toolkit.

Turns raw pre-training documents into grounded instruction-response pairs with an instruction synthesizer
(an LLM, or the model-free rules miner), renders them into instruction-augmented pre-training text, and
(later stages) trains and evaluates models on it. Run ``instructpt --help``.
"""

__version__ = "0.1.0"
