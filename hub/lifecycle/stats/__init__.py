"""Anonymous statistics (Art. 31-32): the fact table that survives deletion, and what is drawn from it."""
