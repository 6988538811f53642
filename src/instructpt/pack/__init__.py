"""``instructpt pack``: tokenize a source once into memory-mapped token files with a document index."""
