"""``instructpt mix``: a mixture of packed sources by tokens, as a seeded sample index; and reading it in blocks."""
