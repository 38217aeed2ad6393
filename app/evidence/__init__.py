"""Evidence for someone who does not trust callguard: packs of a recording with its proven
history (pack.py, statement.py), and the offline checker anyone can run (offline.py)."""
