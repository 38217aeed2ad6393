"""People who use callguard: their roles and bearer tokens."""
