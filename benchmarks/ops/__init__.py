"""The compiled ops beside their peers, on the same inputs, in one process (shipped with pyrl)."""
